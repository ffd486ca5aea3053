"""Persistence: SQLAlchemy models, engines and Alembic migrations shared by the services."""
