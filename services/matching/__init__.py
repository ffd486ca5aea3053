"""Matching: sealed templates, 1:1 verification and 1:N search."""
