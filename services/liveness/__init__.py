"""Liveness: passive PAD, flash challenges, device signatures and nonce single use."""
