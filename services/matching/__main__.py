"""Run the matching service: `python -m services.matching`."""

from identity_runtime.server import serve
from services.matching.service import SPEC


def main() -> None:
    serve(SPEC)


if __name__ == "__main__":
    main()
