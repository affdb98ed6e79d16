"""Alembic environment: runs migrations on a synchronous psycopg 3 connection."""

import os

from alembic import context
from sqlalchemy import create_engine, pool

from ingest.db.base import Base
from ingest.db.models import *  # noqa: F403  (registers every table on Base.metadata)
from ingest.db.session import sqlalchemy_url

config = context.config
if not config.get_main_option("sqlalchemy.url") and os.environ.get("INGEST_DATABASE_URL"):
    config.set_main_option("sqlalchemy.url", os.environ["INGEST_DATABASE_URL"].replace("%", "%%"))
target_metadata = Base.metadata


def run_migrations_offline() -> None:
    context.configure(
        url=sqlalchemy_url(config.get_main_option("sqlalchemy.url") or ""),
        target_metadata=target_metadata,
        literal_binds=True,
    )
    with context.begin_transaction():
        context.run_migrations()


def run_migrations_online() -> None:
    connection = config.attributes.get("connection")
    if connection is not None:
        context.configure(connection=connection, target_metadata=target_metadata)
        with context.begin_transaction():
            context.run_migrations()
        return
    engine = create_engine(
        sqlalchemy_url(config.get_main_option("sqlalchemy.url") or ""), poolclass=pool.NullPool
    )
    with engine.connect() as conn:
        context.configure(connection=conn, target_metadata=target_metadata)
        with context.begin_transaction():
            context.run_migrations()
    engine.dispose()


if context.is_offline_mode():
    run_migrations_offline()
else:
    run_migrations_online()
