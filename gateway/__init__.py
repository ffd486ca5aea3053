"""HTTP-to-gRPC gateway built from the contracts."""
