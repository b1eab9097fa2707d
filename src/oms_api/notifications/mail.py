"""A notification as an RFC 5322 message (the standard library's `email` package), and the
one way it leaves: SMTP through aiosmtplib, or a `.eml` file for development.

`OMS_SMTP_URL`:
- `smtp://[user:pass@]host[:port]` — port 587 by default; STARTTLS when the server offers
  it (then the login), plain otherwise (a relay on loopback);
- `smtps://[user:pass@]host[:port]` — TLS from the first byte, port 465 by default;
- `file:DIR` — one `<notification id>.eml` per message in DIR (created if missing); a
  retried message overwrites its own file.

A failure is `Temporary` (no connection, a timeout, a 4xx reply: retried with back-off)
or `Permanent` (a 5xx reply: failed at once).
"""

from __future__ import annotations

import asyncio
import os
import tempfile
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from email.header import Header
from email.headerregistry import Address
from email.message import EmailMessage
from email.utils import format_datetime, parseaddr
from pathlib import Path
from urllib.parse import unquote, urlsplit

import aiosmtplib


class SendFailure(Exception):
    """The message did not go; `permanent` when retrying cannot help (a 5xx reply)."""

    def __init__(self, message: str, *, permanent: bool) -> None:
        super().__init__(message)
        self.permanent = permanent


@dataclass(frozen=True, slots=True)
class Attachment:
    filename: str
    content: bytes
    mime_type: str = "application/pdf"


@dataclass(frozen=True, slots=True)
class Outgoing:
    """What the notifier sends: a notification row, rendered."""

    id: str
    from_address: str
    to: str
    reply_to: str | None
    subject: str
    text: str
    html: str
    headers: Mapping[str, str]
    created_at: datetime
    attachments: Sequence[Attachment] = ()


def sender(name: str | None, email: str) -> str:
    """`"Name" <addr>` (encoded as RFC 2047 when the name needs it)."""
    # headerregistry quotes the name whatever it holds (commas, quotes, `<…>`), so a name
    # can never read as another address; the message's policy encodes it (RFC 2047).
    return str(Address(display_name=name, addr_spec=email)) if name else email


def message_id(notification_id: str, from_address: str) -> str:
    """Stable per notification: a retried send carries the same one."""
    domain = parseaddr(from_address)[1].rpartition("@")[2] or "oms-api.invalid"
    return f"<{notification_id}@{domain}>"


def build_message(out: Outgoing) -> EmailMessage:
    message = EmailMessage()
    message["Message-ID"] = message_id(out.id, out.from_address)
    # When it is sent (a follow-up is made at delivery, sent days later; a retry later still).
    message["Date"] = format_datetime(datetime.now(UTC))
    message["From"] = out.from_address
    message["To"] = out.to
    if out.reply_to:
        message["Reply-To"] = out.reply_to
    if out.subject.isascii():
        message["Subject"] = out.subject
    else:
        message.set_raw("Subject", _encoded_words("Subject", out.subject))
    for name, value in out.headers.items():
        message[name] = value
    message["X-OMS-Notification-Id"] = out.id
    message.set_content(out.text)
    message.add_alternative(out.html, subtype="html")
    for attachment in out.attachments:
        maintype, _, subtype = attachment.mime_type.partition("/")
        message.add_attachment(
            attachment.content, maintype=maintype, subtype=subtype, filename=attachment.filename
        )
    return message


def _encoded_words(header: str, text: str) -> str:
    """`text` as RFC 2047 encoded words in lines of at most 76 characters, every space
    inside a word. (The `email` package's own folding of a long non-ASCII subject can leave
    a space only as the fold between two encoded words, which a decoder ignores: "Заказ
    подтверждён: спасибо" arrived as "подтверждён:спасибо".) Stored with `set_raw`, the
    policy writes these lines as they are."""
    return Header(text, "utf-8", header_name=header).encode(linesep="\n")


def valid_address(value: str) -> bool:
    """An address the `email` package accepts as one mailbox, with a domain."""
    try:
        address = Address(addr_spec=value)
    except (ValueError, IndexError, TypeError):
        return False
    return bool(address.username and "." in address.domain)


@dataclass(frozen=True, slots=True)
class Transport:
    scheme: str  # smtp | smtps | file
    host: str = ""
    port: int = 0
    username: str | None = None
    password: str | None = None
    directory: Path | None = None

    @classmethod
    def from_url(cls, url: str) -> Transport:
        if url.startswith("file:"):
            path = url.removeprefix("file:")
            if path.startswith("//"):
                path = urlsplit(url).path
            return cls("file", directory=Path(unquote(path)))
        parts = urlsplit(url)
        if parts.scheme not in {"smtp", "smtps"} or not parts.hostname:
            raise ValueError("OMS_SMTP_URL must be smtp://host[:port], smtps://… or file:DIR")
        default_port = 465 if parts.scheme == "smtps" else 587
        return cls(
            parts.scheme,
            host=parts.hostname,
            port=parts.port or default_port,
            username=unquote(parts.username) if parts.username else None,
            password=unquote(parts.password) if parts.password else None,
        )

    @property
    def description(self) -> str:
        if self.scheme == "file":
            return f"files in {self.directory}"
        return f"{self.scheme}://{self.host}:{self.port}"

    async def send(self, message: EmailMessage, *, seconds: float) -> None:
        """Raises SendFailure."""
        if self.scheme == "file":
            await asyncio.to_thread(self._write, message)
            return
        try:
            errors, _ = await aiosmtplib.send(
                message,
                hostname=self.host,
                port=self.port,
                username=self.username,
                password=self.password,
                use_tls=self.scheme == "smtps",
                start_tls=None if self.scheme == "smtp" else False,  # None: when offered
                timeout=seconds,
            )
        except aiosmtplib.SMTPRecipientsRefused as exc:
            codes = [r.code for r in exc.recipients]
            detail = "; ".join(f"{r.code} {r.message}" for r in exc.recipients)
            raise SendFailure(
                f"recipient refused: {detail}"[:500], permanent=all(c >= 500 for c in codes)
            ) from exc
        except aiosmtplib.SMTPResponseException as exc:
            raise SendFailure(
                f"SMTP {exc.code}: {exc.message}"[:500], permanent=exc.code >= 500
            ) from exc
        except (aiosmtplib.SMTPException, OSError, TimeoutError) as exc:
            raise SendFailure(f"{type(exc).__name__}: {exc}"[:500], permanent=False) from exc
        if errors:  # some recipients refused (we send to one: not reached in practice)
            detail = "; ".join(f"{k}: {v.code} {v.message}" for k, v in errors.items())
            raise SendFailure(f"recipient refused: {detail}"[:500], permanent=True)

    def _write(self, message: EmailMessage) -> None:
        if self.directory is None:
            raise RuntimeError("a file transport has a directory")
        try:
            self.directory.mkdir(parents=True, exist_ok=True)
            notification_id = str(message["X-OMS-Notification-Id"])
            final = self.directory / f"{notification_id}.eml"
            with tempfile.NamedTemporaryFile(
                "wb", dir=self.directory, prefix=".tmp-", delete=False
            ) as handle:
                handle.write(bytes(message))
                temporary = Path(handle.name)
            os.replace(temporary, final)
        except OSError as exc:
            raise SendFailure(f"could not write {self.directory}: {exc}", permanent=False) from exc
