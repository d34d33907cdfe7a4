"""``HOST:PORT`` on a command line, parsed one way for every server of the local stack."""

from __future__ import annotations

import argparse

DEFAULT_HOST = "127.0.0.1"


def parse_listen(value: str) -> tuple[str, int]:
    """``"HOST:PORT"`` (``[::1]:PORT`` for IPv6, ``:PORT`` for ``DEFAULT_HOST``; port 0 picks a free
    one) as ``(host, port)``; ``argparse.ArgumentTypeError`` otherwise (argparse shows its message)."""
    host, sep, port = value.strip().rpartition(":")
    if not sep or not port.isdigit() or int(port) > 65535:
        raise argparse.ArgumentTypeError(f"expected HOST:PORT, got {value!r}")
    return host.strip("[]") or DEFAULT_HOST, int(port)


def listen_address(value: str) -> str:
    """An argparse ``type`` for an address handed on to another process as written: checked here,
    so a mistake is reported by the command the user ran."""
    parse_listen(value)
    return value
