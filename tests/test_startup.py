"""`ingest serve` refuses to start on settings it cannot work with: one line naming the setting, exit 2."""

import os
import subprocess
import sys
from pathlib import Path

import pytest

INGEST = str(Path(sys.executable).parent / "ingest")
AIRBYTE = {"INGEST_ENGINE": "airbyte", "INGEST_AIRBYTE_URL": "http://airbyte.internal:8000"}
GOOD_KEY = "k1:" + "A" * 43  # 32 zero bytes, urlsafe base64 without padding


def serve(tmp_path: Path, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    base = {k: v for k, v in os.environ.items() if not k.startswith("INGEST_")}
    return subprocess.run(
        [INGEST, "serve", "--no-migrate", "--port", "1"],  # never bound: the checks come first
        env={**base, "INGEST_DATA_DIR": str(tmp_path / "data"), **env},
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


@pytest.mark.parametrize(
    ("env", "line"),
    [
        ({"INGEST_PORT": "eighty"}, "INGEST_PORT must be a whole number, not 'eighty'"),
        ({"INGEST_CONNECTOR_TIMEOUT_SECONDS": "5m"}, "INGEST_CONNECTOR_TIMEOUT_SECONDS must be a number"),
        ({"INGEST_WORKER_CONCURRENCY": "0"}, "INGEST_WORKER_CONCURRENCY must be at least 1, not 0"),
        ({"INGEST_RUN_WORKER": "maybe"}, "INGEST_RUN_WORKER must be true or false"),
        ({"INGEST_ENGINE": "airbyte"}, "INGEST_AIRBYTE_URL is required when INGEST_ENGINE=airbyte"),
        (AIRBYTE, "INGEST_AIRBYTE_DESTINATION_CONFIG is required when INGEST_ENGINE=airbyte"),
        (
            {**AIRBYTE, "INGEST_AIRBYTE_DESTINATION_CONFIG": "{'bucket': 'b'}"},
            "INGEST_AIRBYTE_DESTINATION_CONFIG is not valid JSON (line 1, column 2)",
        ),
        (
            {
                **AIRBYTE,
                "INGEST_AIRBYTE_DESTINATION_CONFIG": '{"s3_bucket_name": "b"}',
                "INGEST_AIRBYTE_CLIENT_ID": "x",
            },
            "INGEST_AIRBYTE_CLIENT_ID and INGEST_AIRBYTE_CLIENT_SECRET go together",
        ),
        ({"INGEST_AIRBYTE_URL": "http://airbyte:80OO/"}, "INGEST_AIRBYTE_URL is not a valid URL"),
        (
            {"INGEST_JWT_JWKS_URL": "idp.example.com/jwks"},
            "INGEST_JWT_JWKS_URL must be a URL with scheme http",
        ),
        ({"INGEST_S3_ENDPOINT_URL": "http:///nohost"}, "INGEST_S3_ENDPOINT_URL has no host"),
        (
            {"INGEST_DATABASE_URL": "mysql://root:hunter2@db/ingest"},
            "INGEST_DATABASE_URL must be a URL with scheme postgresql",
        ),
        ({"INGEST_SECRET_KEY": "k1:c2hvcnQ="}, "INGEST_SECRET_KEY key 'k1' must be 32 bytes"),
        (
            {"INGEST_SECRET_KEY": "just-a-password"},
            "INGEST_SECRET_KEY entries must look like 'kid:base64key'",
        ),
        ({"INGEST_CATALOG_TYPE": "rest"}, "INGEST_CATALOG_URI is required when INGEST_CATALOG_TYPE=rest"),
        # the checks every setting of a kind gets, whoever added it
        ({"INGEST_WEBHOOK_TIMEOUT_SECONDS": "-1"}, "INGEST_WEBHOOK_TIMEOUT_SECONDS must not be negative"),
        ({"INGEST_CORS_ORIGINS": "admin.example.com"}, "INGEST_CORS_ORIGINS must be a URL with scheme http"),
        (
            {"INGEST_CORS_ORIGINS": "https://admin.example.com,https://other.example.com/console"},
            "INGEST_CORS_ORIGINS entries must be origins like https://admin.example.com (no path)",
        ),
    ],
)
def test_serve_refuses_to_start_naming_the_setting(tmp_path: Path, env: dict[str, str], line: str) -> None:
    result = serve(tmp_path, env)

    assert result.returncode == 2, result.stderr
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    assert lines[0].startswith("ingest: cannot start: " + line), lines[0]
    assert "Traceback" not in result.stderr
    assert "hunter2" not in result.stderr  # a URL's password is never repeated


@pytest.mark.parametrize(
    ("key_file", "env", "setting"),
    [
        ("dev-secret-key", {}, "INGEST_SECRET_KEY"),
        ("dev-jwt-secret", {"INGEST_SECRET_KEY": GOOD_KEY}, "INGEST_JWT_SECRET"),
    ],
)
def test_serve_refuses_an_unreadable_development_key(
    tmp_path: Path, key_file: str, env: dict[str, str], setting: str
) -> None:
    # a directory where the key file should be: unreadable even for root
    (tmp_path / "data" / key_file).mkdir(parents=True)

    result = serve(tmp_path, env)

    assert result.returncode == 2, result.stderr
    assert result.stderr.strip() == (
        f"ingest: cannot start: {setting} is unset and the development"
        f"{' signing' if setting == 'INGEST_JWT_SECRET' else ''} key in INGEST_DATA_DIR ({tmp_path / 'data'})"
        f" cannot be read or created: Is a directory ({tmp_path / 'data' / key_file})"
    )


def test_the_deployment_manifests_pass_the_start_up_checks() -> None:
    from ingest.core.settings import Settings
    from tests.test_deploy import SETTINGS, by_kind

    config = by_kind("ConfigMap")["ingest-config"]["data"]
    secret = by_kind("Secret")["ingest-secrets"]["stringData"]
    settings = Settings.from_env({**config, **{k: v for k, v in secret.items() if k in SETTINGS}})
    settings.check()  # raises SettingsError naming the variable otherwise
    assert settings.engine == "airbyte"
