"""A real IMAP server for the tests and the benchmark: Debian's Dovecot, run as a foreground child process.

Everything lives in one temporary directory: the config, a self-signed certificate made here, a passwd-file
of users (the password doubles as an XOAUTH2 token: Dovecot's OAuth2 mechanisms verify the token as a
password against the passdb), and Maildir mailboxes with special-use folders (\\Trash, \\Junk, \\Sent,
\\Archive). One listener for plain IMAP (STARTTLS offered) and one for implicit TLS, on free ports.
`make test` installs the package (`make dovecot`).
"""

import contextlib
import datetime
import os
import pwd
import shutil
import signal
import socket
import subprocess
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

DOVECOT = shutil.which("dovecot") or "/usr/sbin/dovecot"

CONFIG = """
base_dir = {root}/run
state_dir = {root}/state
log_path = {root}/dovecot.log
protocols = imap
listen = 127.0.0.1
ssl = yes
ssl_cert = <{root}/cert.pem
ssl_key = <{root}/key.pem
disable_plaintext_auth = no
auth_mechanisms = plain login xoauth2
default_login_user = {login_user}
default_internal_user = {internal_user}
first_valid_uid = 1
mail_location = maildir:~/Maildir
mail_uid = {mail_uid}
mail_gid = {mail_gid}
mail_max_userip_connections = 200
imap_idle_notify_interval = 1 mins
passdb {{
  driver = passwd-file
  args = scheme=PLAIN username_format=%u {root}/passwd
}}
userdb {{
  driver = static
  args = home={root}/mail/%u
}}
namespace inbox {{
  inbox = yes
  separator = /
  mailbox Trash {{
    special_use = \\Trash
    auto = subscribe
  }}
  mailbox Junk {{
    special_use = \\Junk
    auto = subscribe
  }}
  mailbox Sent {{
    special_use = \\Sent
    auto = subscribe
  }}
  mailbox Archive {{
    special_use = \\Archive
    auto = subscribe
  }}
}}
service imap-login {{
  inet_listener imap {{
    address = 127.0.0.1
    port = {port}
  }}
  inet_listener imaps {{
    address = 127.0.0.1
    port = {tls_port}
    ssl = yes
  }}
}}
service anvil {{
  chroot =
}}
service imap-login {{
  chroot =
}}
"""


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def self_signed(directory: Path, host: str = "localhost") -> Path:
    """A self-signed certificate for `host` (and 127.0.0.1); returns the PEM certificate path."""
    import ipaddress

    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, host)])
    now = datetime.datetime.now(datetime.UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(days=1))
        .not_valid_after(now + datetime.timedelta(days=30))
        .add_extension(
            x509.SubjectAlternativeName(
                [x509.DNSName(host), x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]
            ),
            critical=False,
        )
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .sign(key, hashes.SHA256())
    )
    (directory / "key.pem").write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
        )
    )
    path = directory / "cert.pem"
    path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    return path


@dataclass
class ImapServer:
    root: Path
    port: int  # plain IMAP, STARTTLS offered
    tls_port: int  # implicit TLS
    cert_pem: str  # the self-signed certificate, to trust in a config
    process: subprocess.Popen[bytes]
    users: dict[str, str]

    def log(self) -> str:
        path = self.root / "dovecot.log"
        return path.read_text(errors="replace") if path.exists() else ""


def _ids() -> tuple[str, str, int, int]:
    """(login user, internal user, mail uid, mail gid): Dovecot refuses mail access as root."""
    if os.getuid() == 0:
        nobody = pwd.getpwnam("nobody")
        return "dovenull", "dovecot", nobody.pw_uid, nobody.pw_gid
    me = pwd.getpwuid(os.getuid())
    return me.pw_name, me.pw_name, me.pw_uid, me.pw_gid


@contextlib.contextmanager
def dovecot(users: dict[str, str]) -> Iterator[ImapServer]:
    """Start Dovecot in the foreground with `users` ({name: password}); stop it and remove its files after."""
    # Not under pytest's tmp_path: its parents are private to root, and mail runs as another user. In
    # memory when possible: removing thousands of Maildir files took 17 s on this machine's disk.
    shm = Path("/dev/shm")
    where = str(shm) if shm.is_dir() and os.access(shm, os.W_OK) else None
    root = Path(tempfile.mkdtemp(prefix="ingest-imap-", dir=where))
    os.chmod(root, 0o755)
    login_user, internal_user, uid, gid = _ids()
    try:
        for sub in ("run", "state", "mail"):
            (root / sub).mkdir()
        os.chown(root / "mail", uid, gid)
        cert = self_signed(root)
        (root / "passwd").write_text("".join(f"{u}:{p}\n" for u, p in users.items()))
        port, tls_port = free_port(), free_port()
        config = root / "dovecot.conf"
        config.write_text(
            CONFIG.format(
                root=root,
                port=port,
                tls_port=tls_port,
                login_user=login_user,
                internal_user=internal_user,
                mail_uid=uid,
                mail_gid=gid,
            )
        )
        process = subprocess.Popen(
            [DOVECOT, "-F", "-c", str(config)],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
            start_new_session=True,
        )
        server = ImapServer(root, port, tls_port, cert.read_text(), process, dict(users))
        try:
            _wait_listening(server)
            yield server
        finally:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(process.pid, signal.SIGTERM)
            try:
                process.wait(10)
            except subprocess.TimeoutExpired:
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(process.pid, signal.SIGKILL)
                process.wait(5)
            if process.stderr is not None:
                process.stderr.close()
    finally:
        shutil.rmtree(root, ignore_errors=True)


def _wait_listening(server: ImapServer) -> None:
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline:
        if server.process.poll() is not None:
            stderr = server.process.stderr.read().decode(errors="replace") if server.process.stderr else ""
            raise RuntimeError(f"dovecot exited {server.process.returncode}: {stderr}\n{server.log()}")
        try:
            with socket.create_connection(("127.0.0.1", server.port), timeout=1) as s:
                if s.recv(100).startswith(b"* OK"):
                    return
        except OSError:
            time.sleep(0.1)
    raise RuntimeError(f"dovecot did not start listening: {server.log()}")
