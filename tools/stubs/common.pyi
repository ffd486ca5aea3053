# `import common` in a benchmark script run as `python tools/bench/NAME.py`
# (tools/bench is then on sys.path): the file mypy checks as tools.bench.common.
from tools.bench.common import *  # noqa: F403 - all it defines
