"""The mesh services, one package per service."""
