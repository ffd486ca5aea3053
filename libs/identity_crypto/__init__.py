"""Envelope encryption: sealing templates, key-encryption keys, rotation and crypto-shredding.

- `keyring`: named 256-bit secrets with a primary, from a secret file or setting.
- `kms`: the key-encryption service seam (`KeyEncryptionService`) and `LocalKms`.
- `envelope`: AES-256-GCM sealing with associated data binding the row.
- `templates`: compact fp16/int8 template encodings.
- `datakeys`: per-customer data keys, crypto-shredding, re-wrapping (rotation).

Domain code: no gRPC. Errors are identity_runtime domain errors.
"""
