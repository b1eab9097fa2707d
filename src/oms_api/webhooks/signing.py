"""Standard Webhooks signing (https://www.standardwebhooks.com)."""

from __future__ import annotations

import base64
import secrets
from datetime import UTC, datetime

from standardwebhooks.webhooks import Webhook

SECRET_PREFIX = "whsec_"


def new_secret() -> str:
    return SECRET_PREFIX + base64.b64encode(secrets.token_bytes(32)).decode()


def signature_header(
    secrets_in_use: list[str], *, msg_id: str, timestamp: datetime, body: str
) -> str:
    """`v1,<sig>` for each secret, space-separated: receivers accept any one of them, which
    lets an endpoint's old and new secret both verify while it rotates."""
    naive_utc = timestamp.astimezone(UTC).replace(tzinfo=None)
    return " ".join(Webhook(s).sign(msg_id, naive_utc, body) for s in secrets_in_use)
