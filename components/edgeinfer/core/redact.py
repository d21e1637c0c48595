"""One redaction function for everything that leaves the process as text: log lines, one-line errors,
IoT Edge reported properties, health events, summaries and results.

It removes what a deployment or a URL may carry and nobody but the device should see: passwords in URLs
(``rtsp://user:pw@cam``), signature and token query parameters (Azure SAS ``sig=``, ``token=``,
``X-Amz-Signature=``, ...), the keys in connection strings (``SharedAccessKey=``, ``AccountKey=``), whole
``SharedAccessSignature ...`` tokens and ``Bearer`` credentials. What is left still says which host,
which path and which setting, so an error stays useful.
"""

from __future__ import annotations

import logging
import re
from typing import Any

MASK = "***"

_URL_PASSWORD = re.compile(r"(?i)\b([a-z][a-z0-9+.-]*://[^/@:\s]*):[^/@\s]*@")
_SECRET_PARAMS = re.compile(
    r"(?i)([?&;](?:sig|signature|se|skoid|sktid|skt|ske|sks|skv|token|access_token|id_token|refresh_token|code|"
    r"password|passwd|pwd|secret|client_secret|api[-_]?key|apikey|key|x-amz-signature|x-amz-credential|"
    r"x-amz-security-token|x-goog-signature|x-goog-credential)=)[^&#;\s'\"]+")
_CONN_KEYS = re.compile(r"(?i)\b(SharedAccessKey|AccountKey|SharedAccessSignature|Password|Pwd)=[^;\s'\"]+")
_SAS_TOKEN = re.compile(r"(?i)\bSharedAccessSignature\s+[^\s'\"]+")
_BEARER = re.compile(r"(?i)\b(Bearer|Basic)\s+[A-Za-z0-9._~+/=-]{8,}")


def redact(text: str) -> str:
    """``text`` with every secret this module knows replaced by ``***``."""
    if not text:
        return text
    text = _SAS_TOKEN.sub(f"SharedAccessSignature {MASK}", text)
    text = _URL_PASSWORD.sub(rf"\1:{MASK}@", text)
    text = _SECRET_PARAMS.sub(rf"\1{MASK}", text)
    text = _CONN_KEYS.sub(rf"\1={MASK}", text)
    return _BEARER.sub(rf"\1 {MASK}", text)


def redact_any(value: Any) -> Any:
    """Strings redacted inside dicts and lists (reported properties, summaries); other values as they are."""
    if isinstance(value, str):
        return redact(value)
    if isinstance(value, dict):
        return {k: redact_any(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return type(value)(redact_any(v) for v in value)
    return value


class RedactingFilter(logging.Filter):
    """A handler filter: the formatted message (arguments included) and any traceback text, redacted."""

    def filter(self, record: logging.LogRecord) -> bool:
        message = record.getMessage()
        clean = redact(message)
        if clean != message:
            record.msg, record.args = clean, None
        if record.exc_info and not record.exc_text:
            record.exc_text = logging.Formatter().formatException(record.exc_info)
        if record.exc_text:
            record.exc_text = redact(record.exc_text)
        return True


def install(logger: logging.Logger | None = None) -> None:
    """Add the filter to every handler of ``logger`` (the root logger by default); idempotent."""
    for handler in (logger or logging.getLogger()).handlers:
        if not any(isinstance(f, RedactingFilter) for f in handler.filters):
            handler.addFilter(RedactingFilter())
