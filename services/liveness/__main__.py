"""Run the liveness service: `python -m services.liveness`."""

from identity_runtime.server import serve
from services.liveness.service import SPEC


def main() -> None:
    serve(SPEC)


if __name__ == "__main__":
    main()
