"""The one typed settings object, read from the environment and the command line (flags win).

Every setting has an environment variable and a flag. An empty environment variable counts as unset.
A bad value raises :class:`SettingsError` with a one-line message naming the variable or flag; the
CLI prints it and exits 2. Secrets (the password, a password inside ``REDIS_URL``) are never echoed.
"""

from __future__ import annotations

import argparse
import math
import os
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, NoReturn
from urllib.parse import parse_qsl, quote, unquote, urlsplit, urlunsplit

ENVIRONMENTS = ("production", "development")
_TRUE = frozenset({"1", "true", "yes", "on"})
_FALSE = frozenset({"0", "false", "no", "off"})
# URL query options that name a file the TLS setup reads: checked at startup, not at the first connect.
_TLS_FILE_OPTIONS = ("ssl_ca_certs", "ssl_certfile", "ssl_keyfile")


class SettingsError(ValueError):
    """A bad setting; the message is one line and names its source (env var or flag)."""


@dataclass(frozen=True)
class Settings:
    enable_redis_events: bool = True
    event_log_rate_limit: int = 100
    environment: str = "production"
    redis_url: str | None = None
    redis_host: str = "127.0.0.1"
    redis_port: int = 6379
    redis_db: int = 0
    redis_username: str | None = None
    redis_password: str | None = None
    channel: str = "aws-masker:events"
    listen_host: str = "127.0.0.1"
    listen_port: int = 8090
    redis_timeout_s: float = 2.0
    reconnect_base_s: float = 0.5
    reconnect_cap_s: float = 5.0
    unhealthy_after_failures: int = 3
    unhealthy_after_s: float = 10.0
    token: str | None = None

    @property
    def redis_display_url(self) -> str:
        """The Redis target for logs and the ready line, with any password replaced by ``***``."""
        if self.redis_url is not None:
            return redact_url(self.redis_url)
        host = f"[{self.redis_host}]" if ":" in self.redis_host else self.redis_host
        auth = ""
        if self.redis_username or self.redis_password:
            auth = quote(self.redis_username or "", safe="") + (":***" if self.redis_password else "") + "@"
        return f"redis://{auth}{host}:{self.redis_port}/{self.redis_db}"


def http_url(host: str, port: int) -> str:
    shown = f"[{host}]" if ":" in host else host
    return f"http://{shown}:{port}"


def redact_url(url: str) -> str:
    """``url`` with the password (userinfo and any ``*password*`` query option) replaced by ``***``."""
    try:
        parts = urlsplit(url)
        netloc = parts.netloc
        if "@" in netloc:
            userinfo, _, hostport = netloc.rpartition("@")
            user, has_password, _password = userinfo.partition(":")
            netloc = f"{user}:***@{hostport}" if has_password else f"{user}@{hostport}"
        query = "&".join(
            f"{key}=***" if "password" in unquote(key).lower() else f"{key}{sep}{value}"
            for key, sep, value in (pair.partition("=") for pair in parts.query.split("&"))
        )
        return urlunsplit((parts.scheme, netloc, parts.path, query, parts.fragment))
    except ValueError:
        return "<unparseable URL>"


# --- value parsers: each takes the raw text and returns the value or raises ValueError(reason) ---


def _bool(raw: str) -> bool:
    value = raw.strip().lower()
    if value in _TRUE:
        return True
    if value in _FALSE:
        return False
    raise ValueError(f"expected true or false, got {_shown(raw)}")


def _int_between(low: int, high: int | None) -> Callable[[str], int]:
    def parse(raw: str) -> int:
        try:
            value = int(raw.strip(), 10)
        except ValueError:
            value = None
        if value is None or value < low or (high is not None and value > high):
            bound = f"from {low} to {high}" if high is not None else f">= {low}"
            raise ValueError(f"expected an integer {bound}, got {_shown(raw)}")
        return value

    return parse


def _seconds(minimum: float, *, inclusive: bool) -> Callable[[str], float]:
    def parse(raw: str) -> float:
        try:
            value = float(raw.strip())
        except ValueError:
            value = math.nan
        ok = math.isfinite(value) and (value >= minimum if inclusive else value > minimum)
        if not ok:
            bound = f">= {minimum:g}" if inclusive else f"> {minimum:g}"
            raise ValueError(f"expected a number of seconds {bound}, got {_shown(raw)}")
        return value

    return parse


def _environment(raw: str) -> str:
    value = raw.strip().lower()
    if value not in ENVIRONMENTS:
        raise ValueError(f"expected production or development, got {_shown(raw)}")
    return value


def _text(raw: str) -> str:
    return raw


def _channel(raw: str) -> str:
    if not raw.strip():
        raise ValueError("expected a channel name")
    return raw


def _host(raw: str) -> str:
    value = raw.strip().strip("[]")
    if not value or any(c.isspace() for c in value):
        raise ValueError(f"expected a host name or address, got {_shown(raw)}")
    return value


def _listen(raw: str) -> tuple[str, int]:
    host, sep, port = raw.strip().rpartition(":")
    if not sep or not port.isdigit() or int(port) > 65535:
        raise ValueError(f"expected HOST:PORT (port 0 picks a free one), got {_shown(raw)}")
    host = host.strip("[]") or "127.0.0.1"
    return host, int(port)


def _redis_url(raw: str) -> str:
    from redis.asyncio import Redis
    from redis.asyncio.connection import parse_url
    from redis.exceptions import RedisError

    url = raw.strip()
    try:
        options = parse_url(url)  # checks the scheme, the port and the typed query options
    except ValueError as exc:
        raise ValueError(f"{exc} (got {redact_url(url)})") from None
    parts = urlsplit(url)
    if parts.scheme.lower() == "unix" and not options.get("path"):
        raise ValueError(f"a unix:// URL needs a socket path (got {redact_url(url)})")
    query = dict(parse_qsl(parts.query))
    for name in _TLS_FILE_OPTIONS:
        path = query.get(name)
        if path and not os.path.isfile(path):
            raise ValueError(f"{name} file not found: {path}")
    try:  # builds a connection object (no I/O): rejects options redis-py does not know
        pool: Any = Redis.from_url(url).connection_pool
        pool.make_connection()
    except (TypeError, ValueError, RedisError) as exc:
        raise ValueError(f"unsupported option in the URL: {exc}") from None
    return url


def _token(raw: str) -> str:
    value = raw.strip()
    if len(value) < 16 or not value.isascii() or any(c.isspace() for c in value):
        raise ValueError("expected at least 16 printable ASCII characters without spaces")
    return value


def is_loopback(host: str) -> bool:
    return host in ("localhost", "::1") or host.startswith("127.")


def _shown(raw: str) -> str:
    return repr(raw if len(raw) <= 40 else raw[:37] + "...")


@dataclass(frozen=True)
class Option:
    """One setting: its field on :class:`Settings`, its env var, its flag, and how to read it."""

    field: str
    env: str
    flag: str
    metavar: str
    parse: Callable[[str], Any]
    help: str
    default_text: str


OPTIONS: tuple[Option, ...] = (
    Option(
        "enable_redis_events",
        "ENABLE_REDIS_EVENTS",
        "--enable-redis-events",
        "BOOL",
        _bool,
        "consume events from Redis; false: no Redis at all, only the HTTP endpoint",
        "true",
    ),
    Option(
        "event_log_rate_limit",
        "EVENT_LOG_RATE_LIMIT",
        "--event-log-rate-limit",
        "N",
        _int_between(0, None),
        "events logged per second (1 s window); the rest are counted and summarised",
        "100",
    ),
    Option(
        "environment",
        "AWS_MASKER_ENV",
        "--env",
        "ENV",
        _environment,
        "production: one JSON line per event; development: detailed, human-readable lines",
        "production",
    ),
    Option(
        "redis_url",
        "REDIS_URL",
        "--redis-url",
        "URL",
        _redis_url,
        "redis://, rediss:// (TLS) or unix:// URL with redis-py query options (e.g. ssl_ca_certs=...); "
        "when set, the REDIS_HOST/PORT/DB/USERNAME/PASSWORD settings are ignored",
        "unset",
    ),
    Option("redis_host", "REDIS_HOST", "--redis-host", "HOST", _host, "Redis host", "127.0.0.1"),
    Option("redis_port", "REDIS_PORT", "--redis-port", "PORT", _int_between(1, 65535), "Redis port", "6379"),
    Option("redis_db", "REDIS_DB", "--redis-db", "N", _int_between(0, None), "Redis database number", "0"),
    Option("redis_username", "REDIS_USERNAME", "--redis-username", "NAME", _text, "Redis ACL user", "unset"),
    Option(
        "redis_password",
        "REDIS_PASSWORD",
        "--redis-password",
        "PASSWORD",
        _text,
        "Redis password (prefer the env var: flags show in the process list)",
        "unset",
    ),
    Option(
        "channel",
        "AWS_MASKER_EVENT_CHANNEL",
        "--channel",
        "NAME",
        _channel,
        "Pub/Sub channel to subscribe to",
        "aws-masker:events",
    ),
    Option(
        "listen",
        "AWS_MASKER_SUBSCRIBER_LISTEN",
        "--listen",
        "HOST:PORT",
        _listen,
        "HTTP address of the live page, /health, /stats and /metrics (port 0 picks a free one)",
        "127.0.0.1:8090",
    ),
    Option(
        "redis_timeout_s",
        "AWS_MASKER_REDIS_TIMEOUT_S",
        "--redis-timeout",
        "SECONDS",
        _seconds(0, inclusive=False),
        "timeout of one connection attempt (connect, AUTH, SUBSCRIBE)",
        "2",
    ),
    Option(
        "reconnect_base_s",
        "AWS_MASKER_RECONNECT_BASE_S",
        "--reconnect-base",
        "SECONDS",
        _seconds(0, inclusive=False),
        "reconnect backoff base (exponential, full jitter)",
        "0.5",
    ),
    Option(
        "reconnect_cap_s",
        "AWS_MASKER_RECONNECT_CAP_S",
        "--reconnect-cap",
        "SECONDS",
        _seconds(0, inclusive=False),
        "longest wait between two connection attempts",
        "5",
    ),
    Option(
        "unhealthy_after_failures",
        "AWS_MASKER_UNHEALTHY_AFTER_FAILURES",
        "--unhealthy-after-failures",
        "N",
        _int_between(1, None),
        "/health answers 503 after this many consecutive failed attempts",
        "3",
    ),
    Option(
        "unhealthy_after_s",
        "AWS_MASKER_UNHEALTHY_AFTER_S",
        "--unhealthy-after",
        "SECONDS",
        _seconds(0, inclusive=True),
        "/health answers 503 once disconnected from Redis this long",
        "10",
    ),
    Option(
        "token",
        "AWS_MASKER_SUBSCRIBER_TOKEN",
        "--token",
        "TOKEN",
        _token,
        "bearer token required on every path but /health (the page takes it as ?token=); "
        "set it whenever the listen address is not loopback",
        "unset",
    ),
)


class _Parser(argparse.ArgumentParser):
    """argparse that raises :class:`SettingsError` (one line) instead of printing usage and exiting."""

    def error(self, message: str) -> NoReturn:
        raise SettingsError(message)


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(
        prog="aws-masker subscriber",
        description=(
            "Consume aws-masker monitoring events from Redis Pub/Sub: log them (rate-limited), count them, "
            "and serve /health, /stats and /metrics. Every flag has an environment variable; flags win. "
            "An empty environment variable counts as unset."
        ),
        epilog="exit status: 0 after SIGTERM/SIGINT, 1 if the HTTP address cannot be bound, 2 on a bad value",
    )
    for opt in OPTIONS:
        parser.add_argument(
            opt.flag,
            dest=opt.field,
            metavar=opt.metavar,
            default=None,
            help=f"{opt.help} [env {opt.env}; default {opt.default_text}]",
        )
    return parser


def load_settings(argv: Sequence[str] | None = None, environ: Mapping[str, str] | None = None) -> Settings:
    """Settings from ``argv`` (flags) over ``environ`` over the defaults. ``--help`` exits 0."""
    env = os.environ if environ is None else environ
    args = build_parser().parse_args(list(argv or ()))
    values: dict[str, Any] = {}
    for opt in OPTIONS:
        raw: str | None = getattr(args, opt.field)
        source = opt.flag
        if raw is None:
            raw, source = env.get(opt.env), opt.env
        if raw is None or not raw.strip():
            continue
        try:
            values[opt.field] = opt.parse(raw)
        except ValueError as exc:
            raise SettingsError(f"{source}: {exc}") from None
    if "listen" in values:
        values["listen_host"], values["listen_port"] = values.pop("listen")
    settings = Settings(**values)
    if settings.reconnect_cap_s < settings.reconnect_base_s:
        raise SettingsError(
            f"the reconnect cap ({settings.reconnect_cap_s:g} s, --reconnect-cap/AWS_MASKER_RECONNECT_CAP_S) "
            f"must be >= the reconnect base ({settings.reconnect_base_s:g} s, "
            "--reconnect-base/AWS_MASKER_RECONNECT_BASE_S)"
        )
    return settings
