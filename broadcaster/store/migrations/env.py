"""Alembic environment: runs on the engine broadcaster hands it, never on a URL
from an ini file, so `db upgrade` migrates exactly the configured database."""

from alembic import context

from broadcaster.store.models import Base

engine = context.config.attributes["engine"]
with engine.begin() as connection:
    context.configure(
        connection=connection,
        target_metadata=Base.metadata,
        render_as_batch=connection.dialect.name == "sqlite",
    )
    context.run_migrations()
