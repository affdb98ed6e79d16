"""Installs a connector package into its own virtualenv, once, atomically, under a file lock."""

import fcntl
import json
import os
import shutil
import subprocess
import sys
import uuid
from pathlib import Path
from urllib.parse import urlsplit

from ingest.core.errors import ConnectorError
from ingest.engines.base import ConnectorType
from ingest.engines.registry import console_script

_MARKER = ".installed"
# The Python CDK pins numpy<2, pandas 2.2 and friends: Python >=3.10,<3.13.
_PYTHON_RANGE = ">=3.10,<3.13"


def venv_dir(connectors_dir: Path, connector: ConnectorType) -> Path:
    return connectors_dir / f"{connector.id}-{connector.version}"


def is_installed(venv: Path, connector: ConnectorType) -> bool:
    return (venv / _MARKER).is_file() and (venv / "bin" / console_script(connector)).is_file()


def _uv() -> str | None:
    found = shutil.which("uv")
    if found:
        return found
    beside = Path(sys.executable).parent / "uv"
    return str(beside) if beside.is_file() else None


def _python_request() -> str:
    return sys.executable if (3, 10) <= sys.version_info[:2] < (3, 13) else _PYTHON_RANGE


def _redact_url(text: str, url: str | None) -> str:
    if not url:
        return text
    parts = urlsplit(url)
    if parts.password:
        text = text.replace(parts.password, "********")
    return text


def _run(argv: list[str], timeout: float, index_url: str | None) -> None:
    try:
        result = subprocess.run(argv, capture_output=True, text=True, timeout=timeout, check=False)
    except subprocess.TimeoutExpired as exc:
        raise ConnectorError(f"connector install timed out after {timeout:g} s") from exc
    if result.returncode != 0:
        tail = "\n".join((result.stderr or result.stdout).strip().splitlines()[-5:])
        raise ConnectorError(f"connector install failed: {_redact_url(tail, index_url)}")


def install_blocking(
    connectors_dir: Path, connector: ConnectorType, *, index_url: str | None, timeout: float
) -> Path:
    """Install `package==version` into `<connectors_dir>/<id>-<version>`; safe across processes."""
    if connector.package is None or connector.version is None or "embedded" not in connector.engines:
        raise ConnectorError(f"connector {connector.id} cannot run in the embedded engine")
    target = venv_dir(connectors_dir, connector)
    if is_installed(target, connector):
        return target
    connectors_dir.mkdir(parents=True, exist_ok=True)
    with open(connectors_dir / f".{target.name}.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        try:
            if is_installed(target, connector):  # another process finished while we waited
                return target
            temp = connectors_dir / f".tmp-{target.name}-{uuid.uuid4().hex[:8]}"
            try:
                _create(temp, f"{connector.package}=={connector.version}", index_url, timeout)
                (temp / _MARKER).write_text(
                    json.dumps({"package": connector.package, "version": connector.version})
                )
                if target.exists():  # a half-installed leftover from an older layout
                    shutil.rmtree(target)
                # The venv is run as `<venv>/bin/python <script>`, so absolute shebangs written for the
                # temp path do not matter after the rename.
                os.rename(temp, target)
            finally:
                shutil.rmtree(temp, ignore_errors=True)
        finally:
            fcntl.flock(lock, fcntl.LOCK_UN)
    if not is_installed(target, connector):
        raise ConnectorError(
            f"connector {connector.id} installed without its `{console_script(connector)}` script"
        )
    return target


def _create(venv: Path, requirement: str, index_url: str | None, timeout: float) -> None:
    uv = _uv()
    index = ["--index-url", index_url] if index_url else []
    if uv:
        _run([uv, "venv", "--quiet", "--python", _python_request(), str(venv)], timeout, index_url)
        _run(
            [uv, "pip", "install", "--quiet", "--python", str(venv / "bin" / "python"), *index, requirement],
            timeout,
            index_url,
        )
        return
    _run([sys.executable, "-m", "venv", str(venv)], timeout, index_url)
    pip = [str(venv / "bin" / "python"), "-m", "pip", "install", "--quiet", "--disable-pip-version-check"]
    _run([*pip, *index, requirement], timeout, index_url)
