"""IMAP mailboxes as a source (IMAPClient): the config, connecting with TLS, clear failure messages, folders,
check and discover. The read itself is `imap_read.py`.
"""

import contextlib
import socket
import ssl
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from typing import Any

import pyarrow as pa
from imapclient import IMAPClient
from imapclient import exceptions as imap_errors
from imapclient.util import to_unicode

from ingest.core.errors import ConnectorError, InvalidRequestError
from ingest.engines.base import (
    CheckResult,
    ColumnType,
    DiscoveredColumn,
    DiscoveredStream,
    SyncMode,
)
from ingest.mail import (
    MESSAGE_SCHEMA,
)

MESSAGES = "messages"
FOLDERS = "folders"
CONNECT_TIMEOUT_SECONDS = 10.0
READ_TIMEOUT_SECONDS = 120.0
EXCLUDED_SPECIAL_USE = frozenset({"\\trash", "\\junk"})
_SPECIAL_USE = frozenset({"\\all", "\\archive", "\\drafts", "\\flagged", "\\junk", "\\sent", "\\trash"})
_UNSELECTABLE = frozenset({"\\noselect", "\\nonexistent"})

FOLDERS_SCHEMA = pa.schema(
    [
        pa.field("name", pa.string()),
        pa.field("delimiter", pa.string()),
        pa.field("flags", pa.list_(pa.string())),
        pa.field("special_use", pa.string()),
        pa.field("selected", pa.bool_()),
        pa.field("uidvalidity", pa.int64()),
        pa.field("uidnext", pa.int64()),
        pa.field("messages", pa.int64()),
        pa.field("unseen", pa.int64()),
    ]
)


# -- configuration -----------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Options:
    host: str
    port: int
    tls: str  # implicit | starttls | none
    username: str
    password: str | None
    access_token: str | None
    ca_certificate: str | None
    folders: tuple[str, ...] | None
    since: date | None
    max_message_bytes: int
    store_attachments: bool

    def secrets(self) -> list[str]:
        return [s for s in (self.password, self.access_token) if s]


def options(config: Mapping[str, Any], *, allow_plaintext: bool, today: date | None = None) -> Options:
    """The config as Options; 400 naming each problem (the JSON Schema has already checked the types)."""
    problems: list[str] = []
    tls = str(config.get("tls") or "implicit")
    if tls == "none" and not allow_plaintext:
        problems.append(
            "tls 'none' sends the password unencrypted; it is only accepted when the service runs with "
            "INGEST_IMAP_ALLOW_PLAINTEXT=true"
        )
    password, token = config.get("password"), config.get("access_token")
    if bool(password) == bool(token):
        problems.append("give exactly one of password and access_token")
    if config.get("since_days") is not None and config.get("since_date") is not None:
        problems.append("give since_days or since_date, not both")
    since: date | None = None
    if config.get("since_date") is not None:
        try:
            since = date.fromisoformat(str(config["since_date"]))
        except ValueError:
            problems.append("since_date must be a date (YYYY-MM-DD)")
    elif config.get("since_days") is not None:
        since = (today or datetime.now(UTC).date()) - timedelta(days=int(config["since_days"]))
    if problems:
        raise InvalidRequestError("Invalid IMAP connectionConfig: " + "; ".join(problems))
    folders = config.get("folders")
    return Options(
        host=str(config.get("host")),
        # IMAPS listens on 993; STARTTLS and plain IMAP on 143
        port=int(config.get("port") or (993 if tls == "implicit" else 143)),
        tls=tls,
        username=str(config.get("username")),
        password=str(password) if password else None,
        access_token=str(token) if token else None,
        ca_certificate=str(config["tls_ca_certificate"]) if config.get("tls_ca_certificate") else None,
        folders=tuple(str(f) for f in folders) if folders else None,
        since=since,
        max_message_bytes=int(config.get("max_message_bytes") or 26214400),
        store_attachments=bool(config.get("store_attachments")),
    )


# -- connecting, and saying clearly why it failed ----------------------------------------------------------


def _context(opts: Options) -> ssl.SSLContext:
    context = ssl.create_default_context()
    if opts.ca_certificate:
        try:
            context.load_verify_locations(cadata=opts.ca_certificate)
        except (ssl.SSLError, ValueError):
            raise InvalidRequestError("tls_ca_certificate is not a PEM certificate") from None
    return context


def connect(opts: Options) -> IMAPClient:
    """A logged-in client (TLS as configured, certificates verified); raises what `explain` describes."""
    timeout = imap_timeout()
    if opts.tls == "implicit":
        client = IMAPClient(opts.host, port=opts.port, ssl=True, ssl_context=_context(opts), timeout=timeout)
    else:
        client = IMAPClient(opts.host, port=opts.port, ssl=False, timeout=timeout)
    try:
        if opts.tls == "starttls":
            if not client.has_capability("STARTTLS"):
                raise ConnectorError(
                    f"The server at {opts.host}:{opts.port} does not offer STARTTLS (use tls 'implicit' "
                    "on its IMAPS port)"
                )
            client.starttls(_context(opts))
        client.normalise_times = False  # INTERNALDATE with its zone
        if opts.access_token:
            client.oauth2_login(opts.username, opts.access_token)
        else:
            client.login(opts.username, opts.password or "")
    except BaseException:
        close(client)
        raise
    return client


def imap_timeout() -> Any:
    from imapclient.imapclient import SocketTimeout

    return SocketTimeout(connect=CONNECT_TIMEOUT_SECONDS, read=READ_TIMEOUT_SECONDS)


def close(client: IMAPClient) -> None:
    try:
        client.logout()
    except Exception:
        with contextlib.suppress(Exception):  # the connection is already broken: just close it
            client.shutdown()


def scrub(text: str, opts: Options) -> str:
    first = (text.strip().splitlines() or ["unknown error"])[0]
    for secret in opts.secrets():
        first = first.replace(secret, "********")
    return first[:300]


def explain(exc: BaseException, opts: Options) -> str:
    """A clear, secret-free sentence for a failed connect, login or read."""
    where = f"{opts.host}:{opts.port}"
    if isinstance(exc, ConnectorError | InvalidRequestError):
        return exc.message
    if isinstance(exc, imap_errors.LoginError):
        how = "OAuth2 access token" if opts.access_token else "password"
        said = scrub(to_unicode(str(exc)), opts)
        return (
            f"Wrong credentials: {where} refused user '{opts.username}' (check the {how}; "
            f"server said: {said})"
        )
    if isinstance(exc, ssl.SSLCertVerificationError):
        reason = scrub(str(exc.verify_message or exc.reason or "not trusted"), opts)
        return (
            f"TLS failure with {where}: the server's certificate is not trusted ({reason}); "
            "give its CA in tls_ca_certificate"
        )
    if isinstance(exc, ssl.SSLError):
        reason = str(exc.reason or exc).lower()
        if "wrong_version" in reason or "unknown_protocol" in reason or "record layer" in reason:
            return (
                f"TLS failure with {where}: the server did not answer TLS (is the port right for tls "
                f"'{opts.tls}'? IMAPS is usually 993, STARTTLS 143)"
            )
        return f"TLS failure with {where}: {scrub(str(exc.reason or exc), opts)}"
    if isinstance(exc, socket.gaierror):
        return f"Unknown host '{opts.host}': its name does not resolve"
    if isinstance(exc, ConnectionRefusedError):
        return f"Connection refused by {where}: no IMAP server listens there"
    if isinstance(exc, TimeoutError | socket.timeout):
        return f"Could not reach {where} within {CONNECT_TIMEOUT_SECONDS:g} s (or it stopped answering)"
    if isinstance(exc, OSError):
        return f"Could not connect to {where}: {scrub(exc.strerror or str(exc), opts)}"
    if isinstance(exc, imap_errors.IMAPClientError):
        return f"The IMAP server at {where} answered with an error: {scrub(to_unicode(str(exc)), opts)}"
    return f"IMAP failure with {where}: {scrub(str(exc), opts)}"


# -- folders -----------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Folder:
    name: str
    delimiter: str | None
    flags: tuple[str, ...]

    @property
    def special_use(self) -> str | None:
        return next((f for f in self.flags if f.lower() in _SPECIAL_USE), None)

    @property
    def selectable(self) -> bool:
        return not any(f.lower() in _UNSELECTABLE for f in self.flags)


def list_folders(client: IMAPClient) -> list[Folder]:
    folders = []
    for flags, delimiter, name in client.list_folders():
        folders.append(
            Folder(
                name=to_unicode(name),
                delimiter=to_unicode(delimiter) if delimiter else None,
                flags=tuple(to_unicode(f) for f in flags),
            )
        )
    return folders


def chosen_folders(folders: list[Folder], opts: Options) -> list[Folder]:
    """The configured folders (each must exist), or every selectable one but \\Trash and \\Junk."""
    if opts.folders is not None:
        by_name = {f.name: f for f in folders}
        missing = [name for name in opts.folders if name not in by_name or not by_name[name].selectable]
        if missing:
            raise ConnectorError("No such folder on the server: " + ", ".join(f"'{n}'" for n in missing[:10]))
        return [by_name[name] for name in opts.folders]
    return [
        f
        for f in folders
        if f.selectable and not any(flag.lower() in EXCLUDED_SPECIAL_USE for flag in f.flags)
    ]


# -- check and discover ------------------------------------------------------------------------------------


def check(config: Mapping[str, Any], *, allow_plaintext: bool) -> CheckResult:
    """Log in and list the folders; a failure is a clear message (never a secret)."""
    opts = options(config, allow_plaintext=allow_plaintext)
    try:
        client = connect(opts)
    except Exception as exc:
        return CheckResult(False, explain(exc, opts))
    try:
        folders = list_folders(client)
        chosen_folders(folders, opts)
    except Exception as exc:
        return CheckResult(False, explain(exc, opts))
    finally:
        close(client)
    return CheckResult(True, None)


def _column_type(dtype: pa.DataType) -> ColumnType:
    if pa.types.is_integer(dtype):
        return ColumnType.INTEGER
    if pa.types.is_boolean(dtype):
        return ColumnType.BOOLEAN
    if pa.types.is_timestamp(dtype):
        return ColumnType.TIMESTAMP
    if pa.types.is_date(dtype):
        return ColumnType.DATE
    if pa.types.is_string(dtype) or pa.types.is_large_string(dtype):
        return ColumnType.STRING
    return ColumnType.JSON  # lists and structs


def _columns(schema: pa.Schema, json_columns: Iterable[str] = ()) -> list[DiscoveredColumn]:
    as_json = set(json_columns)
    return [
        DiscoveredColumn(
            name=f.name,
            type=ColumnType.JSON if f.name in as_json else _column_type(f.type),
            nullable=f.nullable,
            json_schema={"arrow_type": str(f.type)},
        )
        for f in schema
    ]


def streams() -> list[DiscoveredStream]:
    """The two streams every mailbox offers (their columns do not depend on the server)."""
    modes = [SyncMode.FULL_REFRESH, SyncMode.INCREMENTAL]
    return [
        DiscoveredStream(
            name=MESSAGES,
            namespace=None,
            columns=_columns(MESSAGE_SCHEMA, ("headers",)),
            supported_sync_modes=modes,
            json_schema={"x-imap": MESSAGES},
            # (message_id, content_hash) in one column: message_id is read from the very bytes
            # content_hash hashes, so the hash alone identifies the same rows, and is never null
            primary_key=[["content_hash"]],
            cursor_field=[],
            source_defined_cursor=True,  # per folder by UID, kept in the connection's state
        ),
        DiscoveredStream(
            name=FOLDERS,
            namespace=None,
            columns=_columns(FOLDERS_SCHEMA),
            supported_sync_modes=modes,  # always read whole (a handful of rows)
            json_schema={"x-imap": FOLDERS},
            primary_key=[["name"]],
            cursor_field=[],
            source_defined_cursor=True,
        ),
    ]


def discover(config: Mapping[str, Any], *, allow_plaintext: bool) -> list[DiscoveredStream]:
    """Logs in (a bad config fails here as in check), then offers `messages` and `folders`."""
    opts = options(config, allow_plaintext=allow_plaintext)
    try:
        client = connect(opts)
    except Exception as exc:
        raise ConnectorError(f"imap discover failed: {explain(exc, opts)}") from None
    try:
        chosen_folders(list_folders(client), opts)
    except Exception as exc:
        raise ConnectorError(f"imap discover failed: {explain(exc, opts)}") from None
    finally:
        close(client)
    return streams()
