#!/usr/bin/env bash
# The Triton Inference Server the test suite starts on CPU comes from the
# nvidia-pytriton wheel (it bundles tritonserver 2.51 and the Python backend).
# It needs numpy<2, which the project venv cannot have, so it lives in its own
# virtualenv: .venv-triton. The Python backend runs ONNX Runtime in that venv,
# and the face_pipeline BLS model runs the project's decoding and cropping code
# there, which needs OpenCV (4.11 is the last release that accepts numpy 1.x).
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
# shellcheck source=tools/python.sh
source "$ROOT/tools/python.sh"
VENV="$ROOT/.venv-triton"
PYTHON="$(supported_python "$ROOT")"
PINS=(
  "nvidia-pytriton==0.7.0"
  "numpy==1.26.4"
  "onnxruntime==1.20.1"
  "opencv-python-headless==4.11.0.86"
)
stamp="$VENV/.installed"
LOCK="$ROOT/tools/envs/triton.lock"
want="$( (printf '%s\n' "${PINS[@]}"; cat "$LOCK") | sha256sum | cut -d' ' -f1)"
ensure_venv "$PYTHON" "$VENV"
if [[ -f "$stamp" && "$(cat "$stamp")" == "$want" ]]; then
  exit 0
fi
# triton.lock pins every transitive package (regenerate with
# `.venv-triton/bin/pip freeze > tools/envs/triton.lock` after changing PINS).
pip_install "$VENV" "installing the Triton server environment (tests only)" \
  -c "$LOCK" "${PINS[@]}"
echo "$want" >"$stamp"
