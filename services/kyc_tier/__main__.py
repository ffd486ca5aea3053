"""Run the kyc-tier service: `python -m services.kyc_tier`."""

from identity_runtime.server import serve
from services.kyc_tier.service import SPEC


def main() -> None:
    serve(SPEC)


if __name__ == "__main__":
    main()
