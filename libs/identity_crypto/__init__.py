"""Envelope encryption: sealing templates, key-encryption keys, rotation and crypto-shredding."""
