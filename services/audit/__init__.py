"""Audit: the append-only, HMAC-chained audit log."""
