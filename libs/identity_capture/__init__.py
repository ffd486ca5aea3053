"""Capture bundles: the canonical digest the SDK signs, device-signature checks, and a
test SDK signer.
"""
