"""Run the capture-quality service: `python -m services.capture_quality`."""

from identity_runtime.server import serve
from services.capture_quality.service import SPEC


def main() -> None:
    serve(SPEC)


if __name__ == "__main__":
    main()
