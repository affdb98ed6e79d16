"""Command-line tools: connectors list/install, secrets rotate."""

import contextlib
import io
import os
import uuid

from sqlalchemy import text

from ingest.cli import main
from ingest.core.crypto import SecretBox
from tests.conftest import TEST_SECRET_KEY


def run_cli(argv: list[str], env: dict[str, str]) -> tuple[int, str]:
    out = io.StringIO()
    saved = dict(os.environ)
    os.environ.update(env)
    try:
        with contextlib.redirect_stdout(out):
            code = main(argv)
    finally:
        os.environ.clear()
        os.environ.update(saved)
    return code, out.getvalue()


def test_connectors_list_shows_engines_and_installs(env_for_subprocess):
    assert run_cli(["connectors", "install", "faker"], env_for_subprocess)[0] == 0
    code, out = run_cli(["connectors", "list"], env_for_subprocess)
    assert code == 0
    lines = {line.split()[0]: line for line in out.splitlines()}
    assert "airbyte-source-faker==" in lines["faker"]
    assert lines["faker"].endswith(" installed") and "not installed" not in lines["faker"]
    assert "Docker image only" in lines["mssql"] and "embedded" not in lines["mssql"]
    assert "read natively" in lines["postgres"] and "embedded" in lines["postgres"]


def test_connectors_install_refuses_java_connectors(env_for_subprocess):
    assert run_cli(["connectors", "install", "oracle"], env_for_subprocess)[0] == 1
    assert run_cli(["connectors", "install", "postgres"], env_for_subprocess)[0] == 0  # nothing to install
    code, out = run_cli(["connectors", "install", "faker"], env_for_subprocess)  # already there: no-op
    assert code == 0 and "faker-7" in out


async def test_secret_rotation_reencrypts_with_the_new_key(client, headers, env_for_subprocess, database_url):
    import asyncio

    # a source committed with the old key (the rollback client cannot be seen from the CLI's connection)
    from sqlalchemy.ext.asyncio import create_async_engine

    from ingest.db.session import sqlalchemy_url

    old = SecretBox.from_setting(TEST_SECRET_KEY)
    source_id = uuid.uuid4()
    engine = create_async_engine(sqlalchemy_url(database_url))
    import json

    config = {"provider": {"aws_secret_access_key": old.encrypt(json.dumps("s3cr3t-value"))}}
    async with engine.begin() as conn:
        await conn.execute(
            text(
                "INSERT INTO sources (id, tenant_id, name, connector_type, config, status) "
                "VALUES (:id, :t, :n, 'file', CAST(:c AS jsonb), 'INACTIVE')"
            ),
            {"id": source_id, "t": uuid.uuid4(), "n": f"rot-{source_id.hex[:6]}", "c": json.dumps(config)},
        )
    new_key = "k2:" + "B" * 43
    env = {**env_for_subprocess, "INGEST_SECRET_KEY": f"{new_key},{TEST_SECRET_KEY}"}
    code, out = await asyncio.to_thread(run_cli, ["secrets", "rotate"], env)
    assert code == 0 and "'k2'" in out
    async with engine.connect() as conn:
        stored = (
            await conn.execute(text("SELECT config FROM sources WHERE id = :id"), {"id": source_id})
        ).scalar_one()
        await conn.execute(text("DELETE FROM sources WHERE id = :id"), {"id": source_id})
        await conn.commit()
    await engine.dispose()
    envelope = stored["provider"]["aws_secret_access_key"]
    assert envelope["kid"] == "k2"
    assert json.loads(SecretBox.from_setting(new_key).decrypt(envelope)) == "s3cr3t-value"
