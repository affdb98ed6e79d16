"""Render the app's OpenAPI document as stable YAML (committed as `openapi.yaml`)."""

from pathlib import Path

import yaml

from ingest.core.settings import Settings


def render_openapi() -> str:
    from ingest.app import create_app

    settings = Settings.from_env(environ={}, jwt_secret="openapi-render-only", data_dir=Path("/nonexistent"))
    app = create_app(settings, configure_logs=False)
    schema = app.openapi_schema.to_schema()
    return yaml.safe_dump(schema, sort_keys=True, allow_unicode=True, width=120)
