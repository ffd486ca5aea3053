"""The `identity` command: run the mesh, migrate, manage keys."""
