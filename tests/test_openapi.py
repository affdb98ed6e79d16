"""The committed openapi.yaml is the one the app generates (`make openapi` regenerates it)."""

from pathlib import Path

from ingest.openapi import render_openapi

ROOT = Path(__file__).resolve().parents[1]


def test_committed_openapi_matches_the_app():
    committed = (ROOT / "openapi.yaml").read_text()
    assert committed == render_openapi(), "openapi.yaml is stale: run `make openapi`"


def test_every_operation_has_an_operation_id():
    import yaml

    document = yaml.safe_load(render_openapi())
    for path, item in document["paths"].items():
        for method, operation in item.items():
            if method in {"get", "post", "put", "delete", "patch"}:
                assert operation.get("operationId"), f"{method.upper()} {path} has no operationId"
