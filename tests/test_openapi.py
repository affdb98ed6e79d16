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


def _operations(document):
    for path, item in document["paths"].items():
        for method, operation in item.items():
            if method in {"get", "post", "put", "delete", "patch"}:
                yield method.upper(), path, operation


def test_every_error_status_is_documented_with_the_error_body():
    import yaml

    document = yaml.safe_load(render_openapi())
    assert "ErrorResponse" in document["components"]["schemas"]
    for method, path, operation in _operations(document):
        responses = operation["responses"]
        assert "400" in responses, f"{method} {path}"
        for status, response in responses.items():
            if int(status) < 400 or (path == "/ready" and status == "503"):
                continue
            schema = response["content"]["application/json"]["schema"]
            assert schema == {"$ref": "#/components/schemas/ErrorResponse"}, f"{method} {path} {status}"


def test_statuses_follow_from_each_route_shape():
    """401/403 where a token is needed, 404 with path ids, 413/415 with a body, security declared."""
    import yaml

    document = yaml.safe_load(render_openapi())
    schemes = document["components"]["securitySchemes"]
    assert schemes["BearerToken"]["scheme"] == "bearer"
    assert schemes["TenantId"] == {
        **schemes["TenantId"],
        "type": "apiKey",
        "in": "header",
        "name": "X-Tenant-Id",
    }
    for method, path, operation in _operations(document):
        responses = set(operation["responses"])
        if path in {"/health", "/ready", "/metrics"}:
            assert not operation.get("security"), path
            assert "401" not in responses
            continue
        assert {"401", "403", "429"} <= responses, f"{method} {path}"
        assert any("BearerToken" in s for s in operation["security"]), f"{method} {path}"
        if "{" in path:
            assert "404" in responses, f"{method} {path}"
        if "requestBody" in operation:
            assert {"413", "415"} <= responses, f"{method} {path}"
        names = {p["name"].lower() for p in operation.get("parameters", [])}
        assert "x-tenant-id" not in names, "the tenant header is the TenantId security scheme"
    # domain statuses declared by the handlers
    paths = document["paths"]
    assert "409" in paths["/api/v1/syncs/connections/{connection_id}/trigger"]["post"]["responses"]
    assert {"502", "503", "504"} <= set(paths["/api/v1/sources/{source_id}/test"]["post"]["responses"])
    assert paths["/api/v1/me"]["get"]["security"] == [{"BearerToken": [], "TenantId": []}, {"ApiKey": []}]
    assert paths["/api/v1/sources/connector-types"]["get"]["security"] == [
        {"BearerToken": []},
        {"ApiKey": []},
    ]
    assert schemes["ApiKey"] == {**schemes["ApiKey"], "type": "apiKey", "in": "header", "name": "X-API-KEY"}
