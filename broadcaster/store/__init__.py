"""Persistence: SQLAlchemy models, engines and Alembic migrations."""
