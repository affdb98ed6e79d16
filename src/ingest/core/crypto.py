"""Encryption of connector secrets at rest: AES-256-GCM with a key id, so keys can be rotated.

`INGEST_SECRET_KEY` is a comma-separated list of `kid:base64key` (32-byte keys, urlsafe base64); the
first key encrypts, every listed key decrypts. Rotation: put the new key first, keep the old one after
it, run `ingest secrets rotate`, then drop the old key.
"""

import base64
import os
import secrets
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from cryptography.hazmat.primitives.ciphers.aead import AESGCM

ENVELOPE_KEY = "$ingest_encrypted"
DEV_KEY_FILE = "dev-secret-key"


class SecretKeyError(Exception):
    """A stored secret was encrypted with a key that is no longer configured."""


@dataclass(frozen=True)
class SecretBox:
    keys: dict[str, bytes]
    primary: str

    @classmethod
    def from_setting(cls, value: str) -> "SecretBox":
        keys: dict[str, bytes] = {}
        primary = ""
        for item in value.split(","):
            kid, sep, encoded = item.strip().partition(":")
            if not sep or not kid:
                raise ValueError("INGEST_SECRET_KEY entries must look like 'kid:base64key'")
            key = base64.urlsafe_b64decode(encoded + "=" * (-len(encoded) % 4))
            if len(key) != 32:
                raise ValueError(
                    f"INGEST_SECRET_KEY key '{kid}' must be 32 bytes (base64 of 32 random bytes)"
                )
            keys[kid] = key
            primary = primary or kid
        if not keys:
            raise ValueError("INGEST_SECRET_KEY is empty")
        return cls(keys=keys, primary=primary)

    @classmethod
    def development(cls, data_dir: Path) -> "SecretBox":
        """A key generated once into the data dir (0600), for `make run` without configuration."""
        path = data_dir / DEV_KEY_FILE
        if not path.exists():
            data_dir.mkdir(parents=True, exist_ok=True)
            tmp = path.with_suffix(".tmp")
            tmp.touch(mode=0o600)
            tmp.write_text("dev:" + base64.urlsafe_b64encode(secrets.token_bytes(32)).decode())
            tmp.replace(path)
        return cls.from_setting(path.read_text().strip())

    def encrypt(self, plaintext: str) -> dict[str, str]:
        nonce = os.urandom(12)
        sealed = AESGCM(self.keys[self.primary]).encrypt(nonce, plaintext.encode(), self.primary.encode())
        return {ENVELOPE_KEY: "v1", "kid": self.primary, "ct": base64.b64encode(nonce + sealed).decode()}

    def decrypt(self, envelope: dict[str, Any]) -> str:
        kid = str(envelope.get("kid"))
        key = self.keys.get(kid)
        if key is None:
            raise SecretKeyError(
                f"secret encrypted with key '{kid}', which INGEST_SECRET_KEY no longer lists"
            )
        raw = base64.b64decode(str(envelope["ct"]))
        return AESGCM(key).decrypt(raw[:12], raw[12:], kid.encode()).decode()


def is_envelope(value: Any) -> bool:
    return isinstance(value, dict) and ENVELOPE_KEY in value
