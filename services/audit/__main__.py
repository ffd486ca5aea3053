"""Run the audit service: `python -m services.audit`."""

from identity_runtime.server import serve
from services.audit.service import SPEC


def main() -> None:
    serve(SPEC)


if __name__ == "__main__":
    main()
