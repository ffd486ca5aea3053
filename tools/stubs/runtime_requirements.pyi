# lock_hashes.py imports it after putting tools/ on sys.path: the file mypy
# checks as tools.runtime_requirements.
from tools.runtime_requirements import *  # noqa: F403 - all it defines
