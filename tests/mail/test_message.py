"""parse_message: decoding (RFC 2047, charsets, transfer encodings, nesting) and hostile input."""

import base64
import datetime as dt
import hashlib
import json
from email.message import EmailMessage
from email.policy import SMTP

import pyarrow as pa
import pytest

from ingest.mail import MESSAGE_SCHEMA, MailLimits, parse_message, rows_to_batch

UTC = dt.UTC


def _message() -> EmailMessage:
    m = EmailMessage()
    m["From"] = "Zoë Ünïcode <zoe@example.com>"
    m["To"] = "a@example.com, Bob Smith <bob@example.com>"
    m["Cc"] = "Team: carol@example.com, dan@example.com;"
    m["Reply-To"] = "=?utf-8?q?Sa=C3=BCl?= <saul@example.com>"
    m["Subject"] = "Grüße, 日本語 📧"
    m["Date"] = "Tue, 01 Dec 2026 10:00:00 +0100"
    m["Message-ID"] = "<child@example.com>"
    m["In-Reply-To"] = "<parent@example.com>"
    m["References"] = "<root@example.com> <parent@example.com>"
    m.set_content("Hällo wörld\n")
    m.add_alternative("<p>Hällo</p>\n", subtype="html")
    return m


def test_a_well_formed_message_decodes_to_exact_values() -> None:
    m = _message()
    m.add_attachment(b"\x00\x01" * 1000, maintype="application", subtype="octet-stream", filename="dätä.bin")
    raw = m.as_bytes(policy=SMTP)

    row = parse_message(raw, folders=["INBOX"], flags=["\\Seen"])

    assert row["message_id"] == "<child@example.com>"
    assert row["thread_id"] == "<root@example.com>"
    assert row["folders"] == ["INBOX"]
    assert row["flags"] == ["\\Seen"]
    assert row["from"] == [{"name": "Zoë Ünïcode", "address": "zoe@example.com"}]
    assert row["to"] == [
        {"name": None, "address": "a@example.com"},
        {"name": "Bob Smith", "address": "bob@example.com"},
    ]
    assert [a["address"] for a in row["cc"]] == ["carol@example.com", "dan@example.com"]
    assert row["reply_to"] == [{"name": "Saül", "address": "saul@example.com"}]
    assert row["subject"] == "Grüße, 日本語 📧"
    assert row["date"] == dt.datetime(2026, 12, 1, 9, 0, tzinfo=UTC)
    assert row["size"] == len(raw)
    assert row["content_hash"] == hashlib.sha256(raw).hexdigest()
    assert row["text_body"] == "Hällo wörld\r\n"  # as the message has it: CRLF on the wire
    assert row["html_body"] == "<p>Hällo</p>\r\n"
    assert row["body_truncated"] is False
    assert row["attachments"] == [
        {
            "name": "dätä.bin",
            "content_type": "application/octet-stream",
            "disposition": "attachment",
            "size": 2000,
            "sha256": hashlib.sha256(b"\x00\x01" * 1000).hexdigest(),
            "storage_key": None,
        }
    ]
    headers = json.loads(row["headers"])
    assert headers["subject"] == ["Grüße, 日本語 📧"]
    assert headers["references"] == ["<root@example.com> <parent@example.com>"]
    assert row["parse_error"] is None


def test_rows_become_one_record_batch_of_the_schema() -> None:
    rows = [parse_message(_message().as_bytes()), parse_message(b"garbage without headers")]

    batch = rows_to_batch(rows)

    assert batch.schema == MESSAGE_SCHEMA
    assert batch.num_rows == 2
    table = pa.Table.from_batches([batch])
    assert table.column("subject").to_pylist()[0] == "Grüße, 日本語 📧"
    assert table.column("date").type == pa.timestamp("us", tz="UTC")


def test_thread_id_falls_back_to_in_reply_to_then_own_id() -> None:
    folded = b"Message-ID: <c@x>\r\nReferences:\r\n <root\r\n @x> <b@x>\r\nIn-Reply-To: <b@x>\r\n\r\nbody"
    reply = b"Message-ID: <b@x>\r\nIn-Reply-To: <a@x>\r\n\r\nbody"
    alone = b"Message-ID: < c @x >\r\n\r\nbody"
    nothing = b"Subject: no ids\r\n\r\nbody"

    assert parse_message(folded)["thread_id"] == "<root@x>"
    assert parse_message(reply)["thread_id"] == "<a@x>"
    assert parse_message(alone)["message_id"] == "<c@x>"
    assert parse_message(alone)["thread_id"] == "<c@x>"
    assert parse_message(nothing)["message_id"] is None
    assert parse_message(nothing)["thread_id"] is None


@pytest.mark.parametrize(
    ("charset", "cte", "text"),
    [
        ("iso-8859-1", "quoted-printable", "café crème"),
        ("windows-1252", "base64", "“quoted” — dash €"),
        ("koi8-r", "8bit", "Привет мир"),
        ("shift_jis", "base64", "日本語のメール"),
        ("utf-8", "quoted-printable", "naïve 😀 " * 30),
    ],
)
def test_bodies_in_any_charset_and_transfer_encoding(charset: str, cte: str, text: str) -> None:
    m = EmailMessage()
    m["Subject"] = "charset"
    m.set_content(text.encode(charset), maintype="text", subtype="plain", cte=cte)
    m.set_param("charset", charset)

    row = parse_message(m.as_bytes())

    assert row["text_body"] == text
    assert row["parse_error"] is None


def test_an_unknown_charset_falls_back_and_says_so() -> None:
    raw = (
        b"Subject: =?x-made-up?q?caf=C3=A9?=\r\nContent-Type: text/plain; charset=x-made-up\r\n\r\n"
        b"caf\xc3\xa9\r\n"
    )
    row = parse_message(raw)

    assert row["subject"] == "café"
    assert row["text_body"] == "café\r\n"
    assert "unknown charset 'x-made-up'" in row["parse_error"]


def test_raw_8bit_headers_and_invalid_bytes_become_valid_text() -> None:
    raw = "Subject: Grüße\r\nFrom: Jörg <j@x>\r\n\r\n".encode() + b"bad \xff\xfe bytes\r\n"
    latin = b"Subject: caf\xe9\r\n\r\nx"

    row = parse_message(raw)

    assert row["subject"] == "Grüße"
    assert row["from"] == [{"name": "Jörg", "address": "j@x"}]
    assert row["text_body"].startswith("bad ")
    assert parse_message(latin)["subject"] == "café"
    rows_to_batch([row])  # every string is valid UTF-8


def test_malformed_headers_are_kept_with_a_parse_error() -> None:
    raw = (
        b'From: <<<@@@>>>, "unterminated\r\n'
        b"To: \r\n"
        b"Date: the day after tomorrow\r\n"
        b"Subject: =?utf-8?b?!!!notbase64?= ok\r\n"
        b"Message-ID: no-brackets-here\r\n"
        b'Content-Type: multipart/mixed; boundary="never-used"\r\n'
        b"\r\n"
        b"just text, the boundary never appears\r\n"
    )
    row = parse_message(raw)

    assert row["date"] is None
    assert row["message_id"] == "no-brackets-here"
    assert "Date header 'the day after tomorrow' cannot be parsed" in row["parse_error"]
    assert "MIME defects" in row["parse_error"]
    assert json.loads(row["headers"])["date"] == ["the day after tomorrow"]
    rows_to_batch([row])


@pytest.mark.parametrize(
    "raw",
    [
        b"",
        b"\x00\x01\x02\xff" * 100,
        b"no colon at all\r\n\r\n",
        b"Content-Type: multipart/mixed; boundary=b\r\n\r\n--b\r\nContent-Type: message/rfc822\r\n\r\n",
        b"Date: Mon, 01 Jan 0001 00:00:00 +2359\r\n\r\n",
        b"Content-Type: text/plain; charset=base64\r\n\r\nxyz",
        b"Content-Transfer-Encoding: base64\r\nContent-Type: application/pdf\r\n\r\nQUJD=====RE",
    ],
)
def test_hostile_input_never_raises(raw: bytes) -> None:
    row = parse_message(raw)

    assert row["size"] == len(raw)
    assert rows_to_batch([row]).num_rows == 1


def test_deep_multipart_nesting_is_bounded() -> None:
    depth = 3000
    raw = b"".join(
        b"Content-Type: multipart/mixed; boundary=b%d\r\n\r\n--b%d\r\n" % (i, i) for i in range(depth)
    )
    row = parse_message(raw, limits=MailLimits(max_parts=500))

    assert row["parse_error"] is not None
    assert rows_to_batch([row]).num_rows == 1


def _nested(levels: int) -> EmailMessage:
    inner = EmailMessage()
    inner["Subject"] = "level 0"
    inner.set_content("innermost body")
    inner.add_attachment(b"deep,data\n", maintype="text", subtype="csv", filename="deep.csv")
    for level in range(1, levels + 1):
        outer = EmailMessage()
        outer["Subject"] = f"level {level}"
        outer.set_content(f"body {level}")
        outer.add_attachment(inner)
        inner = outer
    return inner


def test_nested_messages_are_attachments_and_their_attachments_follow() -> None:
    row = parse_message(_nested(2).as_bytes())

    assert row["subject"] == "level 2"
    assert row["text_body"] == "body 2\n"  # the attached messages' bodies are theirs, not this one's
    types = [(a["content_type"], a["name"]) for a in row["attachments"]]
    assert types == [("message/rfc822", None), ("message/rfc822", None), ("text/csv", "deep.csv")]
    assert row["attachments"][2]["sha256"] == hashlib.sha256(b"deep,data\n").hexdigest()
    assert all(a["size"] and a["sha256"] for a in row["attachments"])
    assert row["parse_error"] is None


def test_nesting_past_the_depth_limit_is_not_followed() -> None:
    row = parse_message(_nested(5).as_bytes(), limits=MailLimits(max_depth=2))

    assert [a["content_type"] for a in row["attachments"]] == ["message/rfc822"] * 3
    assert "nested deeper than 2" in row["parse_error"]


def test_a_large_base64_attachment_is_hashed_exactly_in_chunks() -> None:
    data = bytes(range(256)) * (40 * 1024)  # 10 MiB: several 4 MiB base64 chunks
    m = EmailMessage()
    m["Subject"] = "big"
    m.set_content("see attached")
    m.add_attachment(data, maintype="application", subtype="zip", filename="big.zip")

    row = parse_message(m.as_bytes())

    [att] = row["attachments"]
    assert att["size"] == len(data)
    assert att["sha256"] == hashlib.sha256(data).hexdigest()


def test_unpadded_base64_is_decoded_and_noted() -> None:
    payload = base64.b64encode(b"hello world!!").rstrip(b"=")
    raw = (
        b"Content-Type: application/octet-stream; name=a.bin\r\nContent-Transfer-Encoding: base64\r\n\r\n"
        + payload
        + b"\r\n"
    )
    row = parse_message(raw)

    assert row["attachments"][0]["sha256"] == hashlib.sha256(b"hello world!!").hexdigest()
    assert "without its padding" in row["parse_error"]


def test_bodies_are_capped_and_the_cut_is_flagged() -> None:
    m = EmailMessage()
    m.set_content("x" * 5000)

    row = parse_message(m.as_bytes(), limits=MailLimits(max_body_chars=1000))

    assert len(row["text_body"]) == 1000
    assert row["body_truncated"] is True


def test_an_oversized_message_keeps_its_headers_hash_and_size() -> None:
    m = _message()
    m.add_attachment(b"z" * 50_000, maintype="application", subtype="octet-stream", filename="z.bin")
    raw = m.as_bytes()

    row = parse_message(raw, limits=MailLimits(max_message_bytes=10_000))

    assert row["subject"] == "Grüße, 日本語 📧"
    assert row["thread_id"] == "<root@example.com>"
    assert row["size"] == len(raw)
    assert row["content_hash"] == hashlib.sha256(raw).hexdigest()
    assert row["text_body"] is None
    assert row["attachments"] == []
    assert "over the 10000-byte limit" in row["parse_error"]


def test_attachments_can_be_stored_by_the_caller() -> None:
    stored: dict[str, bytes] = {}

    def store(name: str | None, content_type: str, data: bytes) -> str:
        key = f"att/{hashlib.sha256(data).hexdigest()}"
        stored[key] = data
        return key

    m = _message()
    m.add_attachment(b"%PDF-1.4 fake", maintype="application", subtype="pdf", filename="r.pdf")

    row = parse_message(m.as_bytes(), store_attachment=store)

    [att] = row["attachments"]
    assert stored[att["storage_key"]] == b"%PDF-1.4 fake"


def test_rfc2231_and_rfc2047_file_names_are_decoded() -> None:
    raw = (
        b"Content-Type: multipart/mixed; boundary=XX\r\n\r\n"
        b"--XX\r\nContent-Type: text/plain\r\n\r\nbody\r\n"
        b"--XX\r\nContent-Type: application/pdf\r\n"
        b"Content-Disposition: attachment; filename*=utf-8''r%C3%A9sum%C3%A9.pdf\r\n\r\n%PDF\r\n"
        b'--XX\r\nContent-Type: application/pdf; name="=?utf-8?q?f=C3=BCr.pdf?="\r\n\r\n%PDF\r\n'
        b"--XX--\r\n"
    )
    row = parse_message(raw)

    assert [a["name"] for a in row["attachments"]] == ["résumé.pdf", "für.pdf"]
    assert row["text_body"] == "body"
