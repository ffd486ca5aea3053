"""Run the face-match service: `python -m services.face_match`."""

from identity_runtime.server import serve
from services.face_match.service import SPEC


def main() -> None:
    serve(SPEC)


if __name__ == "__main__":
    main()
