"""Mailbox files (mbox, eml, zip of eml, pst): detection, preview, streamed reading, hostile files."""

import hashlib
import zipfile
from pathlib import Path

import polars as pl
import pytest

from ingest.core.errors import InvalidRequestError, PayloadTooLargeError, UnsupportedMediaError
from ingest.formats import ColumnType, FileFormat, SourceFile, detect_format, preview_file
from ingest.formats import mail as mail_format
from ingest.formats.mail import count_messages, iter_rows
from ingest.mail import MESSAGE_COLUMNS, MailLimits
from tests.mail.samples import (
    PST_INLINE_SAMPLE,
    PST_SAMPLE,
    corrupt_pst,
    messages,
    write_eml_zip,
    write_mbox,
    zip_bomb,
)


def _check_rows(rows: list[dict], expected_folders: list[str] | None = None) -> None:
    samples = messages()
    assert len(rows) == len(samples)
    for row, (raw, want) in zip(rows, samples, strict=True):
        if expected_folders is not None:
            assert row["folders"] == expected_folders
        if want.broken:
            assert row["parse_error"]
            continue
        assert row["parse_error"] is None, row["parse_error"]
        assert row["subject"] == want.subject
        assert row["message_id"] == want.message_id
        assert row["thread_id"] == want.thread_id
        assert row["date"] == want.date
        got = [(a["name"], a["content_type"]) for a in row["attachments"]]
        assert got == [(name, ctype) for name, ctype, _, _ in want.attachments]
        for att, (_, _, size, sha) in zip(row["attachments"], want.attachments, strict=True):
            if sha:
                assert (att["size"], att["sha256"]) == (size, sha)
            else:
                assert att["size"] and att["sha256"]


def test_mbox_is_detected_previewed_counted_and_read(tmp_path: Path) -> None:
    path = write_mbox(tmp_path / "box.mbox", [raw for raw, _ in messages()])
    assert detect_format(path, "box.mbox") is FileFormat.MBOX

    source = SourceFile(path, FileFormat.MBOX)
    preview = preview_file(source, rows=2)

    assert [c.name for c in preview.columns] == list(MESSAGE_COLUMNS)
    assert preview.total_rows == 5
    assert len(preview.rows) == 2
    assert preview.rows[0]["subject"] == "Réunion 日本語 📧 über alles"
    assert preview.rows[0]["date"] == "2026-11-30T08:15:00+00:00"
    assert preview.inferred_types["attachments"] is ColumnType.JSON
    assert preview.inferred_types["size"] is ColumnType.INTEGER
    _check_rows(list(iter_rows(path, FileFormat.MBOX)), expected_folders=[])
    # the streamed scan gives the same rows as the row iterator
    scanned = source.scan().collect()
    assert scanned.height == 5
    assert scanned.get_column("subject").to_list()[:2] == [
        "Réunion 日本語 📧 über alles",
        "Re: Réunion 日本語 📧 über alles",
    ]


def test_mbox_bodies_keep_from_lines_and_status_flags(tmp_path: Path) -> None:
    raw = b"Subject: flags\nStatus: RO\nX-Status: AF\n\nFrom the start, a line that mbox escapes.\n"
    path = write_mbox(tmp_path / "f.mbox", [raw])

    [row] = iter_rows(path, FileFormat.MBOX)

    assert row["flags"] == ["\\Seen", "\\Answered", "\\Flagged"]
    assert ">From the start" in row["text_body"]  # mboxo escaping is kept, as mail clients store it
    assert row["size"] == len(row["text_body"].encode()) + len(
        b"Subject: flags\nStatus: RO\nX-Status: AF\n\n"
    )


def test_an_oversized_mbox_message_is_hashed_not_held(tmp_path: Path) -> None:
    big = b"Subject: big one\nMessage-ID: <big@x>\n\n" + b"0123456789abcdef\n" * 100_000
    path = write_mbox(tmp_path / "big.mbox", [big, b"Subject: small\n\nhi\n"])

    rows = list(iter_rows(path, FileFormat.MBOX, MailLimits(max_message_bytes=200_000)))

    assert [r["subject"] for r in rows] == ["big one", "small"]
    assert rows[0]["size"] == len(big)
    assert rows[0]["content_hash"] == hashlib.sha256(big).hexdigest()
    assert rows[0]["text_body"] is None
    assert "over the 200000-byte limit" in rows[0]["parse_error"]
    assert rows[1]["parse_error"] is None


def test_single_eml_and_zip_of_eml(tmp_path: Path) -> None:
    samples = messages()
    single = tmp_path / "one.eml"
    single.write_bytes(samples[0][0])
    archive = write_eml_zip(tmp_path / "mails.zip", [raw for raw, _ in samples])

    assert detect_format(single, "one.eml") is FileFormat.EML
    assert detect_format(archive, "mails.zip") is FileFormat.EML
    assert detect_format(archive, "mails.eml") is FileFormat.EML
    [row] = iter_rows(single, FileFormat.EML)
    assert row["subject"] == samples[0][1].subject
    assert row["content_hash"] == hashlib.sha256(samples[0][0]).hexdigest()
    assert count_messages(archive, FileFormat.EML) == 5  # __MACOSX and notes.txt are not messages
    _check_rows(list(iter_rows(archive, FileFormat.EML)), expected_folders=["Inbox/2026"])


def test_pst_sample_is_read_through_libpff() -> None:
    assert detect_format(PST_SAMPLE, "outlook.pst") is FileFormat.PST
    assert count_messages(PST_SAMPLE, FileFormat.PST) == 1

    [row] = iter_rows(PST_SAMPLE, FileFormat.PST)

    assert row["subject"] == "I have attachments!"
    assert row["folders"] == ["Outlook データ ファイルのトップ"]
    assert row["text_body"] == "I have attachments!\r\n"
    assert row["flags"] == ["\\Seen", "\\Draft"]
    assert [(a["name"], a["content_type"], a["size"]) for a in row["attachments"]] == [
        ("Microsoft Outlook テスト メッセージ", "application/vnd.ms-outlook", 2582),
        ("green.png", "application/octet-stream", 134),
    ]
    png = row["attachments"][1]
    assert png["sha256"] == "5c3bf091e587dc9813f80bcbd7be371ea723d65e0c36cb9026958356f94d2971"
    assert row["parse_error"] is None

    [inline] = iter_rows(PST_INLINE_SAMPLE, FileFormat.PST)
    assert inline["to"] == [{"name": None, "address": "xmailuser@xmailserver.test"}]
    assert [(a["name"], a["disposition"]) for a in inline["attachments"]] == [
        ("attach.png", "attachment"),
        ("image001.png", "inline"),
    ]


# -- hostile files ---------------------------------------------------------------------------------------


def test_a_pst_with_a_corrupt_node_gives_a_per_message_error(tmp_path: Path) -> None:
    path = corrupt_pst(tmp_path / "corrupt.pst")

    rows = list(iter_rows(path, FileFormat.PST))

    assert len(rows) == count_messages(path, FileFormat.PST)
    [row] = rows
    assert row["subject"] == "I have attachments!"
    assert "attachment 2 cannot be read" in row["parse_error"]
    assert row["attachments"][0]["sha256"]  # what could be read is kept


def test_a_pst_whose_header_is_damaged_is_refused_at_upload(tmp_path: Path) -> None:
    data = bytearray(PST_SAMPLE.read_bytes())
    data[45056 : 45056 + 512] = bytes((b * 7 + 13) & 0xFF for b in data[45056 : 45056 + 512])
    path = tmp_path / "bad.pst"
    path.write_bytes(bytes(data))

    with pytest.raises(InvalidRequestError, match="PST file is damaged"):
        detect_format(path, "bad.pst")


def test_a_zip_bomb_of_eml_is_refused_before_inflating(tmp_path: Path) -> None:
    path = zip_bomb(tmp_path / "bomb.zip")

    with pytest.raises(InvalidRequestError, match="zip bomb"):
        detect_format(path, "bomb.zip")
    with pytest.raises(InvalidRequestError, match="zip bomb"):
        list(iter_rows(path, FileFormat.EML))


def test_too_many_zip_entries_are_refused(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    archive = write_eml_zip(tmp_path / "mails.zip", [raw for raw, _ in messages()])
    monkeypatch.setattr(mail_format, "MAX_ZIP_ENTRIES", 3)

    with pytest.raises(PayloadTooLargeError, match="at most 3"):
        detect_format(archive, "mails.zip")


def test_a_damaged_zip_entry_is_a_row_with_an_error(tmp_path: Path) -> None:
    raws = [raw for raw, _ in messages()]
    archive = tmp_path / "mails.zip"
    with zipfile.ZipFile(archive, "w", compression=zipfile.ZIP_STORED) as zf:
        zf.writestr("a.eml", raws[0])
        zf.writestr("b.eml", raws[1])
    data = bytearray(archive.read_bytes())
    start = data.find(b"Re: ")  # inside b.eml's stored bytes: its CRC no longer matches
    data[start : start + 4] = b"XXXX"
    archive.write_bytes(bytes(data))

    rows = list(iter_rows(archive, FileFormat.EML))

    assert rows[0]["parse_error"] is None
    assert "cannot be read" in rows[1]["parse_error"]
    assert "CRC" in rows[1]["parse_error"]


@pytest.mark.parametrize(
    ("name", "content", "error"),
    [
        ("x.mbox", b"Subject: not an mbox\n\nbody\n", UnsupportedMediaError),
        ("x.eml", b"\x89PNG\r\n\x1a\n binary", UnsupportedMediaError),
        ("x.pst", b"not a pst at all" * 10, UnsupportedMediaError),
        ("x.zip", b"PK\x03\x04 truncated", InvalidRequestError),
        ("x.eml", b"\n\n  \n", InvalidRequestError),
    ],
)
def test_wrong_or_damaged_content_is_refused(tmp_path: Path, name: str, content: bytes, error: type) -> None:
    path = tmp_path / name
    path.write_bytes(content)

    with pytest.raises(error):
        detect_format(path, name)


def test_a_zip_without_eml_files_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "docs.zip"
    with zipfile.ZipFile(path, "w") as zf:
        zf.writestr("a.txt", b"hello")

    with pytest.raises(UnsupportedMediaError, match=r"no \.eml files"):
        detect_format(path, "docs.zip")


def test_malformed_messages_in_an_mbox_are_rows_not_failures(tmp_path: Path) -> None:
    hostile = [
        b"Subject: \xff\xfe\x00 nul and junk\nFrom: ,,,<<>>\nDate: 99 Foo 99999\n\n\x00\x01binary body\n",
        b"Content-Type: multipart/mixed; boundary=x\n\n--x\nContent-Type: message/rfc822\n\n--x--\n",
        b"Subject: fine\n\nok\n",
    ]
    path = write_mbox(tmp_path / "hostile.mbox", hostile)

    frame = pl.from_dicts(list(iter_rows(path, FileFormat.MBOX)))

    assert frame.height == 3
    assert frame.get_column("parse_error").to_list()[0]
    assert frame.get_column("subject").to_list()[2] == "fine"
