"""PostgreSQL sources over TLS: every `ssl_mode` against a real TLS server, a throwaway cluster of the
machine's PostgreSQL binaries on a free port (`ssl = on`, TCP only through `hostssl`), whose certificate
is signed by a CA made in the test for the name `localhost` only.
"""

import contextlib
import datetime
import glob
import os
import pwd
import shutil
import socket
import subprocess
import tempfile
from collections.abc import Iterator
from decimal import Decimal
from pathlib import Path
from typing import Any

import psycopg
import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from ingest.iceberg.warehouse import Warehouse
from tests.conftest import headers_for
from tests.syncs.test_api import _remember_database, run_sync  # noqa: F401
from tests.syncs.test_databases import connect, create_source, test_source

pytestmark = pytest.mark.engines("embedded")


def _pem(cert: x509.Certificate) -> str:
    return cert.public_bytes(serialization.Encoding.PEM).decode()


def _certificate(
    subject: str, issuer: tuple[Any, x509.Certificate] | None, *, dns: str | None = None
) -> tuple[Any, x509.Certificate]:
    """A P-256 key and its certificate: self-signed CA when `issuer` is None, else signed by it for `dns`."""
    key = ec.generate_private_key(ec.SECP256R1())
    now = datetime.datetime.now(datetime.UTC)
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, subject)])
    builder = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(issuer[1].subject if issuer else name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(hours=1))
        .not_valid_after(now + datetime.timedelta(days=1))
    )
    if issuer is None:
        builder = builder.add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
    else:
        builder = builder.add_extension(
            x509.SubjectAlternativeName([x509.DNSName(dns or subject)]), critical=False
        )
    return key, builder.sign(issuer[0] if issuer else key, hashes.SHA256())


def _bin_dir() -> str:
    """The machine's PostgreSQL binaries (built with OpenSSL; the embedded server's are not)."""
    for candidate in sorted(glob.glob("/usr/lib/postgresql/*/bin"), reverse=True):
        if os.path.exists(f"{candidate}/initdb"):
            return candidate
    initdb = shutil.which("initdb")
    assert initdb, "PostgreSQL's server binaries (initdb) are needed for the TLS tests"
    return os.path.dirname(os.path.realpath(initdb))


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@pytest.fixture(scope="module")
def tls_server() -> Iterator[dict[str, Any]]:
    ca = _certificate("ingest test CA", None)
    other_ca = _certificate("some other CA", None)
    server_key, server_cert = _certificate("localhost", ca, dns="localhost")
    root = Path(
        tempfile.mkdtemp(prefix="ingest-tls-pg-")
    )  # not pytest's 0700 dirs: the server's user reads it
    root.chmod(0o755)
    data = root / "data"
    run: dict[str, Any] = {"check": True, "capture_output": True}
    owner: tuple[int, int] | None = None
    if os.geteuid() == 0:  # PostgreSQL refuses to run as root: its own system user runs it
        entry = pwd.getpwnam("postgres")
        owner = (entry.pw_uid, entry.pw_gid)
        run.update(user=entry.pw_uid, group=entry.pw_gid)
        os.chown(root, *owner)
    bin_dir = _bin_dir()
    port = _free_port()
    subprocess.run([f"{bin_dir}/initdb", "-D", str(data), "-U", "postgres", "--auth=trust", "-N"], **run)
    (data / "server.crt").write_text(_pem(server_cert))
    (data / "server.key").write_bytes(
        server_key.private_bytes(
            serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
        )
    )
    # TCP only with TLS: a plain connection finds no pg_hba.conf entry
    (data / "pg_hba.conf").write_text("local all all trust\nhostssl all all 127.0.0.1/32 trust\n")
    with open(data / "postgresql.conf", "a") as conf:
        conf.write(
            f"\nlisten_addresses = '127.0.0.1'\nport = {port}\nunix_socket_directories = '{root}'\n"
            "ssl = on\nfsync = off\nmax_connections = 20\n"
        )
    for name in ("server.crt", "server.key", "pg_hba.conf"):
        os.chmod(data / name, 0o600)
        if owner:
            os.chown(data / name, *owner)
    subprocess.run([f"{bin_dir}/pg_ctl", "-D", str(data), "-l", str(root / "log"), "-w", "start"], **run)
    try:
        with psycopg.connect(
            host="localhost",
            port=port,
            user="postgres",
            dbname="postgres",
            sslmode="require",
            autocommit=True,
        ) as conn:
            conn.execute(
                "CREATE TABLE payments (id bigint PRIMARY KEY, amount numeric(12,2), paid_at timestamptz);"
                " INSERT INTO payments VALUES (1, 10.05, '2024-05-01 12:00:00+02'), (2, -0.01, NULL)"
            )
        yield {
            "port": port,
            "ca": _pem(ca[1]),
            "other_ca": _pem(other_ca[1]),
            "config": {"port": port, "database": "postgres", "username": "postgres"},
        }
    finally:
        with contextlib.suppress(subprocess.CalledProcessError):
            subprocess.run([f"{bin_dir}/pg_ctl", "-D", str(data), "-m", "immediate", "-w", "stop"], **run)
        shutil.rmtree(root, ignore_errors=True)


async def test_postgres_ssl_modes_against_a_tls_server(client, headers, tls_server):
    config = tls_server["config"]
    ca, other_ca = tls_server["ca"], tls_server["other_ca"]
    cases: list[tuple[str, dict[str, Any], str | None]] = [
        ("127.0.0.1", {"mode": "disable"}, "requires SSL"),  # no plain TCP entry on this server
        ("127.0.0.1", {"mode": "allow"}, None),  # plain refused, then TLS
        ("127.0.0.1", {"mode": "prefer"}, None),
        ("127.0.0.1", {"mode": "require"}, None),  # encrypted, nothing verified
        ("127.0.0.1", {"mode": "verify-ca", "ca_certificate": ca}, None),  # the CA, not the name
        ("127.0.0.1", {"mode": "verify-ca", "ca_certificate": other_ca}, "ssl_mode verify-ca"),
        ("localhost", {"mode": "verify-full", "ca_certificate": ca}, None),
        ("127.0.0.1", {"mode": "verify-full", "ca_certificate": ca}, "does not match host name"),
        ("localhost", {"mode": "verify-full", "ca_certificate": other_ca}, "ssl_mode verify-full"),
    ]
    for host, ssl, message in cases:
        source = await create_source(client, headers, "postgres", {**config, "host": host, "ssl_mode": ssl})
        result = await test_source(client, headers, source["id"])
        if message is None:
            assert result["status"] == "ACTIVE", (host, ssl["mode"], result)
        else:
            assert result["status"] == "ERROR", (host, ssl["mode"], result)
            assert message in result["statusMessage"], (host, ssl["mode"], result)
            assert "BEGIN CERTIFICATE" not in result["statusMessage"]


async def test_postgres_sync_over_verify_full(live_client, tenant, tls_server, settings, database_url):
    headers = headers_for(tenant)
    ssl = {"mode": "verify-full", "ca_certificate": tls_server["ca"]}
    config = {**tls_server["config"], "host": "localhost", "ssl_mode": ssl}
    source = await create_source(live_client, headers, "postgres", config)
    connection = await connect(live_client, headers, source["id"], selectedStreams=["public.payments"])
    done = await run_sync(live_client, headers, connection["id"])
    assert done["status"] == "SUCCEEDED", done
    rows = Warehouse.from_settings(settings, database_url).head(tenant, None, "public_payments").to_pylist()
    assert sorted(rows, key=lambda r: r["id"]) == [
        {
            "id": 1,
            "amount": Decimal("10.05"),
            "paid_at": datetime.datetime(2024, 5, 1, 10, tzinfo=datetime.UTC),
        },
        {"id": 2, "amount": Decimal("-0.01"), "paid_at": None},
    ]
    # the source given a CA that did not sign the server's certificate: the read refuses to start
    wrong = {**config, "ssl_mode": {**ssl, "ca_certificate": tls_server["other_ca"]}}
    response = await live_client.put(
        f"/api/v1/sources/{source['id']}",
        json={"name": source["name"], "connectionConfig": wrong},
        headers=headers,
    )
    assert response.status_code == 200, response.text
    failed = await run_sync(live_client, headers, connection["id"])
    assert failed["status"] == "FAILED", failed
    assert "certificate" in failed["errorMessage"], failed
