"""Protobuf <-> domain conversions for kyc-tier (the servicers' and adapters' edge).

enums.py      tiers, kinds, outcomes, purposes, sources, scopes, times
resources.py  resources: customers, verifications, attempts, keys, ...
captures.py   capture requests in (bundles, OCR fields, Dukcapil verdicts)
              and the bundle codec the face flow reopens sealed bundles with
responses.py  the capture flows' results out
"""
