"""Write the Triton model repository with verified weights.

    .venv/bin/python tools/triton_repo.py --out DIR [--pad-model-dir DIR] [--model-dir DIR]
                                          [--backend onnxruntime|python] [--models id,id]
                                          [--pipeline]

Each model's file is checked against its manifest's sha256 and prepared as
the in-process runner prepares it, then written as DIR/<id>/1/model.onnx
next to its config.pbtxt. The PAD weights come from the identity_inference
package unless --pad-model-dir names another copy. --pipeline adds the
`face_pipeline` BLS model (decode -> detect -> align -> PAD -> embed in one
call, deploy/triton/face_pipeline_model.py) over the default detector, PAD
and embedding models, which must be in the repository too.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from identity_inference.manifest import ModelIntegrityError, load_catalogue
from identity_inference.triton_repo import (
    PIPELINE,
    SOURCE_REPOSITORY,
    materialise,
    materialise_pipeline,
)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, required=True)
    parser.add_argument("--pad-model-dir", type=Path)
    parser.add_argument("--model-dir", type=Path)
    parser.add_argument("--backend", choices=("onnxruntime", "python"), default="onnxruntime")
    parser.add_argument(
        "--models", help="comma-separated model ids (default: every model in the repository)"
    )
    parser.add_argument(
        "--pipeline", action="store_true", help="also write the face_pipeline BLS model"
    )
    args = parser.parse_args()
    catalogue = load_catalogue(args.model_dir)
    wanted = (
        args.models.split(",")
        if args.models
        else [p.name for p in SOURCE_REPOSITORY.iterdir() if p.is_dir()]
    )
    unknown = [model_id for model_id in wanted if model_id not in catalogue]
    if unknown:
        print(f"no manifest for {', '.join(unknown)}", file=sys.stderr)
        return 2
    try:
        written = materialise(
            args.out,
            models=tuple(wanted),
            pad_dir=args.pad_model_dir,
            model_dir=args.model_dir,
            backend=args.backend,
        )
        if args.pipeline:
            materialise_pipeline(args.out, model_dir=args.model_dir)
    except ModelIntegrityError as exc:
        print(exc, file=sys.stderr)
        return 2
    for model_id in written:
        print(f"{args.out / model_id / '1' / 'model.onnx'}")
    if args.pipeline:
        print(f"{args.out / PIPELINE / '1'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
