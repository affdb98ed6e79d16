"""Apply the Alembic migrations programmatically (used by `ingest migrate`, `ingest serve` and the tests)."""

from pathlib import Path

from alembic import command
from alembic.config import Config

from ingest.db.session import sqlalchemy_url

ROOT = Path(__file__).resolve().parents[3]


def alembic_config(url: str) -> Config:
    config = Config(str(ROOT / "alembic.ini"))
    config.set_main_option("script_location", str(ROOT / "migrations"))
    config.set_main_option("sqlalchemy.url", sqlalchemy_url(url).replace("%", "%%"))
    return config


def upgrade(url: str, revision: str = "head") -> None:
    command.upgrade(alembic_config(url), revision)
