"""Capture quality: face detection, ISO/IEC 19794-5 measures, KTP card checks and OCR."""
