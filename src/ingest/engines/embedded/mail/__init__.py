"""Mail read natively by the embedded engine: IMAP mailboxes (imap.py), rows in the shared message model."""

import json
from pathlib import Path
from typing import Any

MAIL_CONNECTORS = frozenset({"imap"})


def is_mail(connector_id: str) -> bool:
    return connector_id in MAIL_CONNECTORS


def spec(connector_id: str) -> dict[str, Any]:
    """The connector's JSON Schema (a file beside its module)."""
    loaded: dict[str, Any] = json.loads((Path(__file__).parent / f"{connector_id}.spec.json").read_text())
    return loaded
