"""Every connector the registry pins must install: each pin is resolved against PyPI, all in parallel.

A resolution (`uv pip compile`, the resolver the installer's `uv pip install` runs) is the dry run of an
install: it fails exactly when a pinned release, or one of its pinned dependencies, does not exist.
"""

import shutil
import subprocess
import sys
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import pytest

from ingest.engines.registry import all_connectors

# the embedded engine's connector virtualenvs use this interpreter when it is 3.10-3.12 (the CDK's range)
PYTHON_VERSION = (
    f"{sys.version_info.major}.{sys.version_info.minor}"
    if (3, 10) <= sys.version_info[:2] < (3, 13)
    else "3.11"
)
# a pin known to be broken (it needs smart-open[s3]==4.16.1, which does not exist): the check must see it
BROKEN_PIN = "airbyte-source-s3==4.16.1"


@dataclass(frozen=True)
class Resolution:
    requirement: str
    ok: bool
    detail: str


def _uv() -> str:
    found = shutil.which("uv") or str(Path(sys.executable).parent / "uv")
    if not Path(found).is_file():
        pytest.fail("uv is needed to resolve the connector pins (make install puts it in .venv/bin)")
    return found


def _resolve(requirement: str) -> Resolution:
    argv = [_uv(), "pip", "compile", "--quiet", "--no-header", "--python-version", PYTHON_VERSION, "-"]
    try:
        result = subprocess.run(
            argv, input=f"{requirement}\n", capture_output=True, text=True, timeout=600, check=False
        )
    except subprocess.TimeoutExpired:
        return Resolution(requirement, False, "resolution timed out after 600 s")
    lines = (result.stderr or result.stdout).strip().splitlines()
    return Resolution(requirement, result.returncode == 0, "\n".join(lines[-6:]))


def test_every_registry_pin_resolves_and_a_broken_pin_is_caught() -> None:
    pins = [f"{c.package}=={c.version}" for c in all_connectors() if c.package is not None]
    assert len(pins) >= 12
    with ThreadPoolExecutor(max_workers=8) as pool:
        results = list(pool.map(_resolve, [*pins, BROKEN_PIN]))
    *pinned, broken = results

    failures = [f"{r.requirement}:\n{r.detail}" for r in pinned if not r.ok]
    assert not failures, "connector pins that cannot install:\n" + "\n\n".join(failures)
    assert not broken.ok
    assert "smart-open" in broken.detail
