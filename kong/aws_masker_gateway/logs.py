"""Logging with nginx's level names; ``notice`` (the Kong default) sits between INFO and WARNING."""

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


def configure(level: str = "notice", stream: TextIO | None = None) -> None:
    """Send the gateway's logs to ``stream`` (stderr) as ``<time> [<level>] <message>``."""
    handler = logging.StreamHandler(stream or sys.stderr)
    handler.setFormatter(_NginxFormatter("%(asctime)s [%(nginx_level)s] %(message)s", "%Y/%m/%d %H:%M:%S"))
    root = logging.getLogger("aws_masker_gateway")
    root.handlers[:] = [handler]
    root.setLevel(LEVELS[level])
    root.propagate = False
