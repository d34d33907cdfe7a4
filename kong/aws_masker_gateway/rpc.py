"""Kong's ``mp_rpc`` client: pooled AF_UNIX connections, one request at a time, no pipelining.

Requests are ``[0, msgid, "plugin.<Method>", [param]]`` packed with Kong's encoding
(:mod:`.luamsgpack`); one msgid counter per plugin, starting at 1. Exactly one reply object is read
per call; type-2 notifications are skipped, a reply of another type or with another msgid is a
protocol violation (Kong asserts). A timeout or EOF while waiting yields Kong's ``"no data"``.
"""

from __future__ import annotations

import asyncio
import logging
from dataclasses import dataclass, field
from typing import Any

from . import luamsgpack

log = logging.getLogger("aws_masker_gateway.rpc")

DEFAULT_TIMEOUT = 60.0  # nginx lua_socket_{connect,send,read}_timeout defaults
NO_DATA = "no data"


class RpcError(Exception):
    """A call returned ``nil, err`` on Kong's side; ``str(exc)`` is Kong's error string."""


class RpcConnectError(RpcError):
    """``ngx.socket.connect`` failed."""


class RpcProtocolError(AssertionError):
    """The server broke the protocol in a way Kong turns into a Lua error (assert)."""


class _Conn(asyncio.Protocol):
    """One pooled connection. Replies are decoded as they arrive and handed to the one waiting call
    (Kong never pipelines), so a call costs a write, a future and a timer: no task, no stream."""

    def __init__(self) -> None:
        self.transport: asyncio.Transport | None = None
        self.unpacker = luamsgpack.new_unpacker()
        self.waiter: asyncio.Future[list[Any]] | None = None
        self.closed = False

    # asyncio.Protocol
    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]

    def data_received(self, data: bytes) -> None:
        waiter = self.waiter
        try:
            self.unpacker.feed(data)
            for obj in self.unpacker:
                if isinstance(obj, list) and obj and obj[0] == 2:
                    log.debug("skipping notification %r", obj[1:2])
                    continue
                if waiter is not None and not waiter.done():
                    waiter.set_result(obj)
                    waiter = None
                else:  # a reply nobody asked for: the connection is out of step
                    self.close()
        except ValueError as exc:  # undecodable bytes
            if waiter is not None and not waiter.done():
                waiter.set_exception(exc)
            self.close()

    def connection_lost(self, exc: Exception | None) -> None:
        self.closed = True
        if self.waiter is not None and not self.waiter.done():
            self.waiter.set_exception(EOFError("connection closed"))

    def usable(self) -> bool:
        return not self.closed and self.transport is not None and not self.transport.is_closing()

    def close(self) -> None:
        self.closed = True
        if self.transport is not None:
            self.transport.close()


@dataclass
class ConnectionPool:
    """Keep-alive pool for one socket path (``setkeepalive`` in Kong)."""

    socket_path: str
    max_idle: int = 256  # lua_socket_pool_size
    _idle: list[_Conn] = field(default_factory=list)
    opened: int = 0

    async def acquire(self, timeout: float) -> _Conn:
        while self._idle:
            conn = self._idle.pop()
            if conn.usable():
                return conn
            conn.close()
        loop = asyncio.get_running_loop()
        try:
            _, conn = await asyncio.wait_for(loop.create_unix_connection(_Conn, self.socket_path), timeout)
        except asyncio.TimeoutError as exc:
            raise RpcConnectError("timeout") from exc
        except OSError as exc:
            reason = (exc.strerror or str(exc)).lower()
            raise RpcConnectError(reason) from exc
        self.opened += 1
        return conn

    def release(self, conn: _Conn) -> None:
        if conn.usable() and len(self._idle) < self.max_idle:
            self._idle.append(conn)
        else:
            conn.close()

    def close(self) -> None:
        while self._idle:
            self._idle.pop().close()


class RpcClient:
    """The ``Rpc`` object Kong keeps per external plugin (per worker)."""

    def __init__(self, pool: ConnectionPool, timeout: float = DEFAULT_TIMEOUT) -> None:
        self.pool = pool
        self.timeout = timeout
        self.msg_id = 0
        self.calls = 0

    async def call(self, method: str, param: Any) -> Any:
        """Send one request and return the result; raise :class:`RpcError` with Kong's error text."""
        self.msg_id += 1
        msg_id = self.msg_id
        self.calls += 1
        conn = await self.pool.acquire(self.timeout)
        loop = asyncio.get_running_loop()
        waiter: asyncio.Future[list[Any]] = loop.create_future()
        conn.waiter = waiter
        assert conn.transport is not None
        conn.transport.write(luamsgpack.pack_call(msg_id, method, param))
        timer = loop.call_later(self.timeout, _expire, waiter)
        try:
            reply = await waiter
        except (asyncio.TimeoutError, EOFError, OSError, ValueError) as exc:
            # Kong: reader() not ok -> setkeepalive() (which drops a broken socket) -> "no data"
            conn.close()
            raise RpcError(NO_DATA) from exc
        except BaseException:  # cancellation: the socket state is unknown
            conn.close()
            raise
        finally:
            timer.cancel()
            conn.waiter = None
        if not isinstance(reply, list) or len(reply) < 4 or reply[0] != 1:
            conn.close()
            raise RpcProtocolError("RPC response expected from Go plugin server")
        if reply[1] != msg_id:
            conn.close()
            raise RpcProtocolError("unexpected RPC response ID from Go plugin server")
        self.pool.release(conn)
        error = reply[2]
        if error is not None:
            raise RpcError(luamsgpack.to_text(error))
        return reply[3]


def _expire(waiter: asyncio.Future[list[Any]]) -> None:
    if not waiter.done():
        waiter.set_exception(asyncio.TimeoutError())
