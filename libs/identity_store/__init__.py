"""Persistence building blocks shared by the services: engines and sessions (`db`),
portable column types (`types`), the declarative conventions (`declarative`), a
generic per-owner Alembic runner (`migrate`) and scratch schemas for tests
(`scratch`). Tables and their migrations belong to the services that own them."""
