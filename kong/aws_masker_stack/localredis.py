"""Which Redis ``aws-masker up`` sends monitoring events to.

In order: the one at ``REDIS_URL``; else one answering on 127.0.0.1:6379; else a private
``redis-server`` on a free port (if the binary exists), started as one of the stack's children;
else none, and the stack runs without events. ``find_redis`` says which in one line.
"""

from __future__ import annotations

import shutil
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import unquote, urlparse

import redis

DEFAULT = ("127.0.0.1", 6379)


@dataclass(frozen=True)
class RedisTarget:
    host: str
    port: int
    db: int = 0
    username: str | None = None
    password: str | None = None
    tls: bool = False
    private: bool = False
    """A redis-server this stack starts (and stops)."""

    @property
    def display(self) -> str:
        """The address for messages (never the password)."""
        user = f"{self.username}@" if self.username else ""
        return f"{'rediss' if self.tls else 'redis'}://{user}{self.host}:{self.port}/{self.db}"

    @property
    def url(self) -> str:
        """The address for the subscriber, password included (passed in its environment only)."""
        auth = ""
        if self.password:
            auth = f"{self.username or ''}:{self.password}@"
        elif self.username:
            auth = f"{self.username}@"
        return f"{'rediss' if self.tls else 'redis'}://{auth}{self.host}:{self.port}/{self.db}"


def parse_url(url: str) -> RedisTarget:
    parsed = urlparse(url)
    if parsed.scheme not in ("redis", "rediss") or not parsed.hostname:
        raise ValueError("REDIS_URL must look like redis://[user:password@]host[:port][/db]")
    db = parsed.path.lstrip("/")
    return RedisTarget(
        host=parsed.hostname,
        port=parsed.port or 6379,
        db=int(db) if db.isdigit() else 0,
        username=unquote(parsed.username) if parsed.username else None,
        password=unquote(parsed.password) if parsed.password else None,
        tls=parsed.scheme == "rediss",
    )


def answers(target: RedisTarget, timeout: float = 1.0) -> str | None:
    """None if Redis answers a PING there, else why not (one line, no password)."""
    try:
        client = redis.Redis(
            host=target.host,
            port=target.port,
            db=target.db,
            username=target.username,
            password=target.password,
            ssl=target.tls,
            socket_timeout=timeout,
            socket_connect_timeout=timeout,
        )
        with client:
            client.ping()
    except redis.AuthenticationError:
        return "authentication failed"
    except (redis.RedisError, OSError) as exc:
        return str(exc).splitlines()[0] if str(exc) else type(exc).__name__
    return None


def private_server_argv(run_dir: Path, port: int) -> list[str] | None:
    """The command line of a private, non-persistent redis-server, or None without the binary."""
    binary = shutil.which("redis-server")
    if binary is None:
        return None
    workdir = run_dir / "redis"
    workdir.mkdir(parents=True, exist_ok=True)
    return [
        binary,
        "--bind",
        "127.0.0.1",
        "--port",
        str(port),
        "--save",
        "",
        "--appendonly",
        "no",
        "--dir",
        str(workdir),
        "--daemonize",
        "no",
    ]
