"""Kong's ``mp_rpc`` client: pooled AF_UNIX connections, one request at a time, no pipelining.

Requests are ``[0, msgid, "plugin.<Method>", [param]]`` packed with Kong's encoding
(:mod:`.luamsgpack`); one msgid counter per plugin, starting at 1. Exactly one reply object is read
per call; type-2 notifications are skipped, a reply of another type or with another msgid is a
protocol violation (Kong asserts). A timeout or EOF while waiting yields Kong's ``"no data"``.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from dataclasses import dataclass, field
from typing import Any

from . import luamsgpack

log = logging.getLogger("aws_masker_gateway.rpc")

DEFAULT_TIMEOUT = 60.0  # nginx lua_socket_{connect,send,read}_timeout defaults
READ_CHUNK = 4096  # Kong reads with receiveany(4096)
NO_DATA = "no data"


class RpcError(Exception):
    """A call returned ``nil, err`` on Kong's side; ``str(exc)`` is Kong's error string."""


class RpcConnectError(RpcError):
    """``ngx.socket.connect`` failed."""


class RpcProtocolError(AssertionError):
    """The server broke the protocol in a way Kong turns into a Lua error (assert)."""


@dataclass
class _Conn:
    reader: asyncio.StreamReader
    writer: asyncio.StreamWriter

    def usable(self) -> bool:
        return not self.writer.is_closing() and not self.reader.at_eof()

    def close(self) -> None:
        with contextlib.suppress(Exception):
            self.writer.close()


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
        try:
            reader, writer = await asyncio.wait_for(
                asyncio.open_unix_connection(self.socket_path, limit=2**31), timeout
            )
        except asyncio.TimeoutError as exc:
            raise RpcConnectError("timeout") from exc
        except OSError as exc:
            reason = (exc.strerror or str(exc)).lower()
            raise RpcConnectError(reason) from exc
        self.opened += 1
        return _Conn(reader, writer)

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
        try:
            conn.writer.write(luamsgpack.pack([0, msg_id, method, [param]]))
            await asyncio.wait_for(conn.writer.drain(), self.timeout)
        except (OSError, asyncio.TimeoutError) as exc:
            conn.close()
            raise RpcError(str(exc) or "send failed") from exc
        try:
            reply = await asyncio.wait_for(self._read_reply(conn, msg_id), self.timeout)
        except (asyncio.TimeoutError, EOFError, OSError, ValueError) as exc:
            # Kong: reader() not ok -> setkeepalive() (which drops a broken socket) -> "no data"
            conn.close()
            raise RpcError(NO_DATA) from exc
        except BaseException:  # protocol violation or cancellation: the socket state is unknown
            conn.close()
            raise
        self.pool.release(conn)
        error = reply[2]
        if error is not None:
            raise RpcError(luamsgpack.to_text(error))
        return reply[3]

    @staticmethod
    async def _read_reply(conn: _Conn, msg_id: int) -> list[Any]:
        unpacker = luamsgpack.new_unpacker()
        while True:
            for obj in unpacker:
                if isinstance(obj, list) and obj and obj[0] == 2:
                    log.debug("skipping notification %r", obj[1:2])
                    continue
                if not isinstance(obj, list) or len(obj) < 4 or obj[0] != 1:
                    raise RpcProtocolError("RPC response expected from Go plugin server")
                if obj[1] != msg_id:
                    raise RpcProtocolError("unexpected RPC response ID from Go plugin server")
                return obj
            chunk = await conn.reader.read(READ_CHUNK)
            if not chunk:
                raise EOFError("connection closed")
            unpacker.feed(chunk)
