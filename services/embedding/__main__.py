"""Run the embedding service: `python -m services.embedding`."""

from identity_runtime.server import serve
from services.embedding.service import SPEC


def main() -> None:
    serve(SPEC)


if __name__ == "__main__":
    main()
