"""When to try connecting again (exponential backoff, full jitter, a cap) and how to say why it failed.

:func:`describe_error` turns an exception from a connection attempt into one short, stable phrase
("authentication failed: ...", "Redis unreachable: connection refused", "TLS handshake failed: ..."),
so every failed attempt is one readable log line and never a traceback.
"""

from __future__ import annotations

import asyncio
import errno
import socket
import ssl
from collections.abc import Callable, Iterator

from redis import exceptions as redis_errors

_MAX_EXPONENT = 30  # 2**30 * any sane base is far past any cap


def backoff_delay(failures: int, *, base: float, cap: float, rng: Callable[[], float]) -> float:
    """Seconds to wait after ``failures`` consecutive failures: uniform in [0, min(cap, base * 2**(n-1))].

    ``failures`` 0 (a subscription that was lost, no attempt failed yet) waits up to ``base``.
    """
    exponent = min(max(failures - 1, 0), _MAX_EXPONENT)
    return rng() * min(cap, base * 2.0**exponent)


def describe_error(exc: BaseException) -> str:
    """One line, no traceback, no secrets: why a connection attempt (or a subscription) failed."""
    if isinstance(exc, redis_errors.AuthenticationError):
        return _auth_phrase(_first_line(exc))
    for cause in _chain(exc):
        if isinstance(cause, ssl.SSLCertVerificationError):
            return f"TLS handshake failed: certificate verification failed ({cause.verify_message})"
        if isinstance(cause, ssl.SSLError):
            return f"TLS handshake failed: {cause.reason or _first_line(cause)}"
        if isinstance(cause, FileNotFoundError):
            return f"TLS setup failed: file not found: {cause.filename}"
        if isinstance(cause, socket.gaierror):
            return "Redis unreachable: host name not found"
        if isinstance(cause, ConnectionRefusedError) or (
            isinstance(cause, OSError) and cause.errno == errno.ECONNREFUSED
        ):
            return "Redis unreachable: connection refused"
        if isinstance(cause, (TimeoutError, asyncio.TimeoutError, redis_errors.TimeoutError)):
            return "Redis unreachable: timed out"
    if isinstance(exc, redis_errors.ResponseError):
        return f"Redis refused the subscription: {_first_line(exc)}"
    if isinstance(exc, redis_errors.ConnectionError):
        text = _first_line(exc)
        if "closed by server" in text.lower():
            return "connection closed by Redis"
        return f"Redis connection error: {text}"
    if isinstance(exc, OSError):
        return f"Redis unreachable: {exc.strerror or _first_line(exc)}"
    return f"{type(exc).__name__}: {_first_line(exc)}"


def _auth_phrase(message: str) -> str:
    text = message.lower()
    if "without any password configured" in text:
        return "authentication failed: a password was given but Redis has none configured"
    if "invalid" in text or "wrongpass" in text:
        return "authentication failed: wrong password or username"
    if "required" in text or "authenticated" in text or "noauth" in text:
        return "authentication failed: Redis requires a password (set REDIS_PASSWORD or put it in REDIS_URL)"
    return f"authentication failed: {message}"


def _chain(exc: BaseException) -> Iterator[BaseException]:
    seen: set[int] = set()
    current: BaseException | None = exc
    while current is not None and id(current) not in seen:
        seen.add(id(current))
        yield current
        current = current.__cause__ or current.__context__


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()
    line = text[0] if text else type(exc).__name__
    return line if len(line) <= 200 else line[:197] + "..."
