"""Model hashes on the Triton path.

`tools/triton_repo.py` (identity_inference.triton_repo.materialise) writes
each model's weights only after checking them against the model's manifest,
and records two parameters in the model's config.pbtxt:

- `weights_sha256`: the manifest's sha256 of the weights it prepared from,
  which the embedding service compares with its own manifest when it loads
  the model (identity_inference.triton.TritonRunner), so a repository built
  from other weights is refused at start-up;
- `model_sha256`: the sha256 of the file Triton loads (`1/model.onnx`); for
  the `face_pipeline` BLS model, which has no weights of its own, the digest
  of its whole `1/` directory (model.py, the stage manifests, the project
  modules it imports; `tree_sha256`), pinned as `face_pipeline/1`.

`python -m identity_inference.triton_verify DIR [--expect MODEL/1/model.onnx=HEX ...]`
runs in the Triton pod's init container (the chart's verify-models) before
Triton starts: every model file must match its `model_sha256` and every
`--expect` pin (the chart's triton.modelRepository.sha256), else it exits 1.
"""

from __future__ import annotations

import argparse
import hashlib
import re
import sys
from pathlib import Path

from identity_inference.manifest import sha256_of

MODEL_FILE = "1/model.onnx"
_PARAMETER = r'parameters\s*\{\s*key:\s*"%s"\s*value\s*\{\s*string_value:\s*"([0-9a-f]{64})"'


def parameters_text(weights_sha256: str, model_sha256: str) -> str:
    """The config.pbtxt lines recording both hashes."""
    return "".join(
        f'parameters {{ key: "{key}" value {{ string_value: "{value}" }} }}\n'
        for key, value in (("weights_sha256", weights_sha256), ("model_sha256", model_sha256))
    )


def tree_sha256(directory: Path) -> str:
    """One digest of every file under `directory` (relative paths and bytes;
    Python's byte-code caches, which the server writes, are left out)."""
    digest = hashlib.sha256()
    for path in sorted(p for p in directory.rglob("*") if p.is_file()):
        relative = path.relative_to(directory)
        if "__pycache__" in relative.parts or path.suffix == ".pyc":
            continue
        digest.update(relative.as_posix().encode() + b"\0")
        digest.update(sha256_of(path).encode() + b"\0")
    return digest.hexdigest()


def recorded(config_text: str, key: str) -> str | None:
    match = re.search(_PARAMETER % re.escape(key), config_text)
    return match.group(1) if match else None


def problems(repository: Path, expected: dict[str, str]) -> list[str]:
    """Why the repository may not be served (empty when every file checks out)."""
    found: list[str] = []
    models = sorted(p.parent for p in repository.glob("*/config.pbtxt"))
    if not models:
        return [f"{repository}: no model (no */config.pbtxt)"]
    seen = set()
    for model in models:
        relative = f"{model.name}/{MODEL_FILE}"
        path = model / MODEL_FILE
        if not path.is_file() and (model / "1" / "model.py").is_file():
            # A weightless Python model (the face_pipeline): its whole version directory.
            relative, path = f"{model.name}/1", model / "1"
        seen.add(relative)
        if not path.exists():
            found.append(f"{relative}: missing")
            continue
        actual = tree_sha256(path) if path.is_dir() else sha256_of(path)
        pinned = recorded((model / "config.pbtxt").read_text(), "model_sha256")
        if pinned is None:
            found.append(
                f"{model.name}/config.pbtxt: no model_sha256 (write it with tools/triton_repo.py)"
            )
        elif pinned != actual:
            found.append(f"{relative}: sha256 {actual} differs from its config's {pinned}")
        if relative in expected and expected[relative] != actual:
            found.append(
                f"{relative}: sha256 {actual} differs from the pinned {expected[relative]}"
            )
    for relative in sorted(set(expected) - seen):
        found.append(f"{relative}: pinned but not in the repository")
    return found


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="Verify a Triton model repository's hashes")
    parser.add_argument("repository", type=Path)
    parser.add_argument("--expect", action="append", default=[], metavar="MODEL/1/model.onnx=HEX")
    args = parser.parse_args(argv)
    expected = dict(item.split("=", 1) for item in args.expect)
    found = problems(args.repository, expected)
    for problem in found:
        print(f"triton_verify: {problem}", file=sys.stderr)
    if not found:
        print(f"triton_verify: {args.repository}: every model file matches its sha256")
    return 1 if found else 0


if __name__ == "__main__":
    sys.exit(main())
