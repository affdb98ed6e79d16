"""Mailbox files for the tests, written by independent writers (the stdlib's mailbox.mbox, zipfile)."""

import datetime as dt
import hashlib
import mailbox
import zipfile
from dataclasses import dataclass
from email.message import EmailMessage
from pathlib import Path

DATA = Path(__file__).parent / "data"
PST_SAMPLE = DATA / "msgInMsg.pst"
PST_INLINE_SAMPLE = DATA / "attachAndInline.pst"

PDF = b"%PDF-1.4\n" + bytes(range(256)) * 20
CSV = "name,amount\nZoë,12.50\n".encode()


@dataclass(frozen=True)
class Expected:
    subject: str | None
    message_id: str | None
    thread_id: str | None
    date: dt.datetime | None
    attachments: list[tuple[str | None, str, int, str]]  # name, content type, size, sha256
    broken: bool = False


def _sha(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def messages() -> list[tuple[bytes, Expected]]:
    """A thread of three (unicode subjects, a PDF, a nested message), a lone one, and a broken one."""
    out: list[tuple[bytes, Expected]] = []

    root = EmailMessage()
    root["From"] = "Zoë Ünïcode <zoe@example.com>"
    root["To"] = "team@example.com"
    root["Subject"] = "Réunion 日本語 📧 über alles"
    root["Date"] = "Mon, 30 Nov 2026 09:15:00 +0100"
    root["Message-ID"] = "<root-1@example.com>"
    root.set_content("Bonjour à tous,\nFrom the team: the agenda.\n")
    root.add_attachment(PDF, maintype="application", subtype="pdf", filename="agenda · v2.pdf")
    out.append(
        (
            root.as_bytes(),
            Expected(
                "Réunion 日本語 📧 über alles",
                "<root-1@example.com>",
                "<root-1@example.com>",
                dt.datetime(2026, 11, 30, 8, 15, tzinfo=dt.UTC),
                [("agenda · v2.pdf", "application/pdf", len(PDF), _sha(PDF))],
            ),
        )
    )

    reply = EmailMessage()
    reply["From"] = "bob@example.com"
    reply["To"] = "Zoë Ünïcode <zoe@example.com>"
    reply["Subject"] = "Re: Réunion 日本語 📧 über alles"
    reply["Date"] = "Mon, 30 Nov 2026 10:00:00 -0500"
    reply["Message-ID"] = "<reply-2@example.com>"
    reply["In-Reply-To"] = "<root-1@example.com>"
    reply["References"] = "<root-1@example.com>"
    reply.set_content("Ja, natürlich.\n")
    reply.add_attachment(CSV, maintype="text", subtype="csv", filename="zahlen.csv")
    out.append(
        (
            reply.as_bytes(),
            Expected(
                "Re: Réunion 日本語 📧 über alles",
                "<reply-2@example.com>",
                "<root-1@example.com>",
                dt.datetime(2026, 11, 30, 15, 0, tzinfo=dt.UTC),
                [("zahlen.csv", "text/csv", len(CSV), _sha(CSV))],
            ),
        )
    )

    forward = EmailMessage()
    forward["From"] = "carol@example.com"
    forward["To"] = "zoe@example.com"
    forward["Subject"] = "Fwd: the reply"
    forward["Date"] = "Tue, 01 Dec 2026 08:00:00 +0000"
    forward["Message-ID"] = "<fwd-3@example.com>"
    forward["References"] = "<root-1@example.com> <reply-2@example.com>"
    forward.set_content("See below.\n")
    forward.add_attachment(reply)
    attached = forward.get_payload()[1].get_payload()[0]  # type: ignore[index,union-attr]
    out.append(
        (
            forward.as_bytes(),
            Expected(
                "Fwd: the reply",
                "<fwd-3@example.com>",
                "<root-1@example.com>",
                dt.datetime(2026, 12, 1, 8, 0, tzinfo=dt.UTC),
                [
                    (None, "message/rfc822", len(attached.as_bytes()), ""),  # size and hash checked loosely
                    ("zahlen.csv", "text/csv", len(CSV), _sha(CSV)),
                ],
            ),
        )
    )

    lone = (
        b"From: =?iso-8859-1?q?Fran=E7ois?= <f@example.org>\n"
        b"Subject: =?utf-8?b?0J/RgNC40LLQtdGC?= =?utf-8?q?_=E4=B8=96=E7=95=8C?=\n"
        b"Date: Wed, 02 Dec 2026 23:59:59 +0900\n"
        b"Message-ID: <lone-4@example.org>\n"
        b"Content-Type: text/plain; charset=iso-8859-1\n"
        b"Content-Transfer-Encoding: quoted-printable\n"
        b"\n"
        b"Ch=E8re Zo=EB\n"
    )
    out.append(
        (
            lone,
            Expected(
                "\u041f\u0440\u0438\u0432\u0435\u0442 世界",
                "<lone-4@example.org>",
                "<lone-4@example.org>",
                dt.datetime(2026, 12, 2, 14, 59, 59, tzinfo=dt.UTC),
                [],
            ),
        )
    )

    broken = (
        b"From: <<<not an address\n"
        b"Subject: =?bogus-charset?q?caf=C3=A9?= \xff\xfe raw\n"
        b"Date: yesterday-ish\n"
        b'Content-Type: multipart/mixed; boundary="gone"\n'
        b"\n"
        b"no parts at all\n"
    )
    out.append((broken, Expected(None, None, None, None, [], broken=True)))
    return out


def write_mbox(path: Path, raws: list[bytes]) -> Path:
    box = mailbox.mbox(path, create=True)
    try:
        for raw in raws:
            box.add(mailbox.mboxMessage(raw))
        box.flush()
    finally:
        box.close()
    return path


def write_eml_zip(path: Path, raws: list[bytes], folder: str = "Inbox/2026") -> Path:
    with zipfile.ZipFile(path, "w", compression=zipfile.ZIP_DEFLATED) as zf:
        for i, raw in enumerate(raws):
            zf.writestr(f"{folder}/{i:03d}.eml", raw)
        zf.writestr("__MACOSX/._000.eml", b"\x00\x05\x16\x07")
        zf.writestr("notes.txt", b"not a message")
    return path


def zip_bomb(path: Path) -> Path:
    """One .eml entry of 50 MiB of the same byte: deflates ~1000x."""
    with (
        zipfile.ZipFile(path, "w", compression=zipfile.ZIP_DEFLATED) as zf,
        zf.open("bomb.eml", "w", force_zip64=True) as entry,
    ):
        entry.write(b"Subject: boom\r\n\r\n")
        block = b"A" * (1024 * 1024)
        for _ in range(50):
            entry.write(block)
    return path


def corrupt_pst(path: Path) -> Path:
    """The PST sample with the node of its second attachment damaged (found by damaging each 4 KiB page)."""
    data = bytearray(PST_SAMPLE.read_bytes())
    for i in range(57344, 57344 + 512):
        data[i] = (data[i] * 7 + 13) & 0xFF
    path.write_bytes(bytes(data))
    return path
