"""The Indonesian KTP: NIK structure and region codes, card fields."""

# Before identity_ktp.ocr imports onnxruntime (and rapidocr): telemetry off.
import identity_inference  # noqa: F401
