"""Embedding: five-point alignment and face embeddings on ONNX Runtime or Triton."""
