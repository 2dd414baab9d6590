"""What output must never show: secrets, and the password of any URL.

Every line the product prints or stores passes through ``redact``: the client secret, access
tokens and destination passwords become ``***``, and so does the password part of any
``scheme://user:password@`` in the text, whoever wrote it (dlt, a driver, a traceback).
"""

from __future__ import annotations

import re
from collections.abc import Iterable

REDACTED = "***"
# Shorter "secrets" are not secrets, and blanking them would garble every message.
MIN_SECRET_LENGTH = 6


def redact(text: str, secrets: Iterable[str | None]) -> str:
    """``text`` without the secrets, and without the password of any URL in it."""
    for secret in secrets:
        if secret and len(secret) >= MIN_SECRET_LENGTH:
            text = text.replace(secret, REDACTED)
    return redact_url(text)


_USERINFO = re.compile(r"(?P<scheme>[a-zA-Z][a-zA-Z0-9+.-]*://)(?P<user>[^:/@\s]*):[^@/\s]+@")


def redact_url(text: str) -> str:
    """Every ``scheme://user:password@`` in ``text`` with the password as ``***``."""
    return _USERINFO.sub(rf"\g<scheme>\g<user>:{REDACTED}@", text)
