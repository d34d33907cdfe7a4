"""Logging with nginx's level names; ``notice`` (the Kong default) sits between INFO and WARNING.

No line may carry anything of a request (path, query, header values, body): a traceback or an
exception's message can (aiohttp's HTTP parser quotes the offending request line or header), so
every record is written with its exception's class only, never its message or traceback. aiohttp's
own loggers go through the same handler.
"""

from __future__ import annotations

import logging
import sys
from typing import TextIO

NOTICE = 25
LEVELS = {
    "debug": logging.DEBUG,
    "info": logging.INFO,
    "notice": NOTICE,
    "warn": logging.WARNING,
    "error": logging.ERROR,
    "crit": logging.CRITICAL,
}
_NGINX_NAMES = {
    logging.DEBUG: "debug",
    logging.INFO: "info",
    NOTICE: "notice",
    logging.WARNING: "warn",
    logging.ERROR: "error",
    logging.CRITICAL: "crit",
}

logging.addLevelName(NOTICE, "NOTICE")


class _NginxFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        record.nginx_level = _NGINX_NAMES.get(record.levelno, record.levelname.lower())
        return super().format(record)


class _ErrorClassOnly(logging.Filter):
    """Replace a record's exception (message and traceback) by the exception's class name."""

    def filter(self, record: logging.LogRecord) -> bool:
        if record.exc_info:
            exc = record.exc_info[1]
            record.msg = f"{record.getMessage()} ({type(exc).__name__})"
            record.args = None
            record.exc_info = None
            record.exc_text = None
        record.stack_info = None
        return True


def configure(level: str = "notice", stream: TextIO | None = None) -> None:
    """Send the gateway's logs to ``stream`` (stderr) as ``<time> [<level>] <message>``."""
    handler = logging.StreamHandler(stream or sys.stderr)
    handler.setFormatter(_NginxFormatter("%(asctime)s [%(nginx_level)s] %(message)s", "%Y/%m/%d %H:%M:%S"))
    handler.addFilter(_ErrorClassOnly())
    for name in ("aws_masker_gateway", "aiohttp"):
        logger = logging.getLogger(name)
        logger.handlers[:] = [handler]
        logger.setLevel(LEVELS[level])
        logger.propagate = False
