"""The Kubernetes manifests in deploy/k8s parse, and run commands and settings that exist."""

import dataclasses
import json
from pathlib import Path
from typing import Any

import pytest
import yaml

from ingest.cli import build_parser
from ingest.core.settings import Settings

K8S = Path(__file__).resolve().parents[1] / "deploy" / "k8s"
SETTINGS = {f"INGEST_{f.name.upper()}" for f in dataclasses.fields(Settings)}


def documents() -> list[dict[str, Any]]:
    kustomization = yaml.safe_load((K8S / "kustomization.yaml").read_text())
    docs = []
    for name in kustomization["resources"]:
        docs.extend(d for d in yaml.safe_load_all((K8S / name).read_text()) if d)
    return docs


def by_kind(kind: str) -> dict[str, dict[str, Any]]:
    return {d["metadata"]["name"]: d for d in documents() if d["kind"] == kind}


def pod_spec(workload: dict[str, Any]) -> dict[str, Any]:
    spec: dict[str, Any] = workload["spec"]["template"]["spec"]
    return spec


def test_every_manifest_file_is_listed_and_parses():
    listed = set(yaml.safe_load((K8S / "kustomization.yaml").read_text())["resources"])
    assert listed == {p.name for p in K8S.glob("*.yaml")} - {"kustomization.yaml"}
    kinds = sorted(d["kind"] for d in documents())
    assert kinds == sorted(
        [
            "Namespace",
            "ConfigMap",
            "Secret",
            "Job",
            "Deployment",
            "Deployment",
            "Service",
            "PodDisruptionBudget",
        ]
    )


@pytest.mark.parametrize(
    ("kind", "name", "command"),
    [
        ("Deployment", "ingest-api", ["serve", "--no-worker", "--no-migrate", "--port", "8113"]),
        ("Deployment", "ingest-worker", ["worker"]),
        ("Job", "ingest-migrate", ["migrate", "head"]),
    ],
)
def test_containers_run_real_cli_commands(kind, name, command):
    [container] = pod_spec(by_kind(kind)[name])["containers"]
    assert container["command"] == ["ingest", *command]
    args = build_parser().parse_args(container["command"][1:])  # exits on an unknown command or flag
    assert callable(args.func)
    assert {e.get("configMapRef", e.get("secretRef"))["name"] for e in container["envFrom"]} == {
        "ingest-config",
        "ingest-secrets",
    }


def test_api_probes_service_and_selectors():
    api = by_kind("Deployment")["ingest-api"]
    [container] = pod_spec(api)["containers"]
    assert container["ports"] == [{"name": "http", "containerPort": 8113}]
    assert container["readinessProbe"]["httpGet"] == {"path": "/ready", "port": "http"}
    assert container["livenessProbe"]["httpGet"] == {"path": "/health", "port": "http"}
    service = by_kind("Service")["ingest-api"]
    assert service["spec"]["ports"][0]["port"] == 8113
    assert service["spec"]["selector"] == api["spec"]["selector"]["matchLabels"]
    assert (
        api["spec"]["selector"]["matchLabels"].items()
        <= api["spec"]["template"]["metadata"]["labels"].items()
    )
    worker = by_kind("Deployment")["ingest-worker"]
    assert worker["spec"]["selector"]["matchLabels"] != api["spec"]["selector"]["matchLabels"]


def test_settings_are_real_setting_names():
    config = by_kind("ConfigMap")["ingest-config"]["data"]
    secret = by_kind("Secret")["ingest-secrets"]["stringData"]
    for key in [*config, *secret]:
        assert key in SETTINGS or key.startswith("AWS_"), key
    assert config["INGEST_ENGINE"] == "airbyte"
    assert config["INGEST_CATALOG_TYPE"] == "rest"
    assert config["INGEST_WAREHOUSE"].startswith("s3://") and config["INGEST_STORAGE_URL"].startswith("s3://")
    destination = json.loads(secret["INGEST_AIRBYTE_DESTINATION_CONFIG"])
    assert destination["warehouse_location"] == config["INGEST_WAREHOUSE"]
    assert destination["catalog_type"]["server_uri"] == config["INGEST_CATALOG_URI"]
    # every setting the manifests use is understood by the service
    settings = Settings.from_env({**config, **{k: v for k, v in secret.items() if k in SETTINGS}})
    assert settings.engine == "airbyte" and settings.catalog_type == "rest"
