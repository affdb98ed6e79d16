from ingest.core.settings import Settings
from ingest.engines.embedded import EmbeddedEngine
from ingest.engines.factory import create_engine
from ingest.engines.registry import all_connectors, console_script, get_connector, runnable_by

JAVA_ONLY = {"mongodb", "mssql", "oracle"}
DATABASES = {"postgres", "mysql"}  # read natively by the embedded engine
MAIL = {"imap"}  # read natively by the embedded engine; Airbyte has no IMAP source


def test_registry_has_every_connector_with_pins() -> None:
    ids = {c.id for c in all_connectors()}
    assert ids >= JAVA_ONLY | DATABASES | {
        "salesforce",
        "hubspot",
        "stripe",
        "s3",
        "gcs",
        "azure-blob-storage",
        "sftp-bulk",
    }
    assert ids >= {"github", "jira", "zendesk", "faker", "file"}
    for connector in all_connectors():
        if connector.id in JAVA_ONLY:
            assert connector.package is None
            assert connector.engines == {"airbyte"}
        elif connector.id in DATABASES:
            assert connector.package is None
            assert connector.engines == {"embedded", "airbyte"}
        elif connector.id in MAIL:
            assert connector.package is None
            assert connector.engines == {"embedded"}
        else:
            assert connector.package == f"airbyte-source-{connector.id}" or connector.id == "zendesk"
            assert connector.version
            assert connector.engines == {"embedded", "airbyte"}


def test_lookups() -> None:
    zendesk = get_connector("zendesk")
    assert zendesk is not None
    assert zendesk.package == "airbyte-source-zendesk-support"
    assert console_script(zendesk) == "source-zendesk-support"
    assert get_connector("nope") is None
    faker = get_connector("faker")
    assert faker is not None
    assert faker.version is not None
    assert faker.version.startswith("7.2.")
    assert {c.id for c in runnable_by("embedded")}.isdisjoint(JAVA_ONLY)
    assert {c.id for c in runnable_by("airbyte")} == {c.id for c in all_connectors()} - MAIL
    assert {c.id for c in runnable_by("embedded")} >= MAIL
    s3 = get_connector("s3")
    assert s3 is not None
    assert "bucket" in s3.endpoint_fields


def test_factory_builds_the_embedded_engine(tmp_path) -> None:
    engine = create_engine(Settings.from_env(environ={}, data_dir=tmp_path))
    assert isinstance(engine, EmbeddedEngine)
    assert engine.name == "embedded"
