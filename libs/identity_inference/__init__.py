"""Model handling and face inference: manifests, runners, detection, quality, alignment,
PAD, embeddings.
"""

import os

# ONNX Runtime 1.31 starts a telemetry client when it is imported, which writes a
# session file (.ses) into the temporary directory of every process that loads a
# model. Off unless the operator says otherwise; set before anything imports
# onnxruntime (identity_ktp imports this package first for the same reason).
os.environ.setdefault("ORT_DISABLE_TELEMETRY", "1")
