"""kong-pdk's plugin server run by one event loop: every connection and every phase on one thread.

``aws-masker-server`` is kong-pdk's dedicated server: its instances, plugin info, dump and command
line are kong-pdk's own. ``install`` replaces how it talks to Kong, because that is what a request
pays for most (each PDK call is one round trip, six per masked request):

- kong-pdk's threads mode reads each connection on its own thread and runs each phase on another
  new thread, so every round trip hands the message from one thread to the other and back through
  queues: two thread wake-ups and two GIL hand-offs per PDK call, more CPU than the call itself.
- Here one thread waits on all connections at once (``selectors``) and runs each phase as a
  greenlet. A PDK call switches from the phase to the loop, which sends it to Kong as the reply to
  the pending ``HandleEvent`` or ``Step``; the ``Step`` that answers it (on whichever pooled
  connection Kong picked) switches back into the phase. No thread wakes up in between.
- Long CPU work would stall every other request on that one thread, so a phase hands it to a worker
  thread with :func:`offload` (aws-masker does for a request body over ``OFFLOAD_BYTES``): the loop
  serves other connections meanwhile, and the reply to Kong's pending call goes out when the
  phase's next PDK call comes. Under the GIL this is as fair as kong-pdk's threads: the worker and
  the loop take turns.
- Work that owes Kong no reply (the ``log`` phase's monitoring events) is handed to
  :func:`when_idle`: the loop runs it once no connection has anything to read, so it never delays
  a reply, and a request that arrives meanwhile is served first. Past ``IDLE_BACKLOG`` waiting
  items (a server that is never idle) it runs one per turn of the loop regardless.
- Unchanged from kong-pdk: the message formats and replies, one reply per request, the error
  strings Kong acts on (``no plugin instance #N``), debug lines at ``-v`` (naming the method only:
  kong-pdk's print the arguments, which carry request bodies), exit when orphaned (parent pid 1).
- Better than kong-pdk: a phase that raises gets an error reply naming the exception's class (Kong
  logs it, and the fail-closed guard refuses the request) instead of leaving Kong waiting for a
  reply that never comes; a reply is written whole (``sendall``) whatever its size.

gevent mode writes replies with ``send`` (truncating large ones) and multiprocessing mode loses
per-instance state, so server.py refuses both (docs/kong-protocol.md).
"""

from __future__ import annotations

import contextlib
import logging
import os
import re
import selectors
import socket
import threading
from collections import deque
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import Any, TypeVar

import greenlet
import msgpack

log = logging.getLogger(__name__)

T = TypeVar("T")

MSG_RET = "ret"  # kong-pdk's last message of a phase
TERMINAL = frozenset(("kong.response.exit", "kong.response.error"))  # Kong sends no Step after these
# kong-pdk's Step and its aliases (one per entity type Kong may send, and multi_map)
STEP_METHODS = frozenset(
    {"step", "step_service", "step_consumer", "step_route", "step_plugin", "step_credential"}
    | {"step_memory_stats", "step_multi_map"}
)
OFFLOAD_WORKERS = 4
IDLE_BACKLOG = 256  # deferred callables waiting before they run even while connections are busy
RECV_SIZE = 1 << 16
SUN_PATH_MAX = 108  # sockaddr_un.sun_path on Linux, with its terminating NUL
ORPHAN_CHECK = 1.0  # seconds between checks that Kong (the parent) is still there
_CMD = re.compile("([a-z])([A-Z])")
_names: dict[str, str] = {}
_DEFERRED = object()  # a phase waiting on offloaded work: Kong's pending call is answered later


class PhaseError(Exception):
    """A phase ended without a reply for Kong."""


def _method_name(cmd: str) -> str:
    """kong-pdk's RPC name conversion (``HandleEvent`` -> ``handle_event``), once per name."""
    name = _names.get(cmd)
    if name is None:
        name = cmd[0].lower() + _CMD.sub(lambda m: f"{m.group(1)}_{m.group(2).lower()}", cmd[1:])
        _names[cmd] = name
    return name


class _PhaseGreenlet(greenlet.greenlet):  # type: ignore[misc]
    phase: Phase


class Phase:
    """One event (a phase of one request): kong-pdk's channel (``put``/``get``) over a greenlet.

    kong-pdk's PDK object calls ``put(call)`` then ``get()`` for each PDK call (``put`` alone for a
    terminal one), and the phase's wrapper puts ``"ret"`` when the phase returns. ``resume`` runs
    the phase until it waits for Kong, offloads, or ends, and returns the first message it put: the
    reply to Kong's pending call."""

    __slots__ = ("eid", "glet", "out", "reply_to")

    def __init__(self, eid: int, target: Callable[[Phase], None]) -> None:
        self.eid = eid
        self.out: deque[Any] = deque()
        self.reply_to: tuple[_Conn, int] | None = None  # Kong's call waiting on offloaded work
        self.glet = _PhaseGreenlet(lambda: target(self))
        self.glet.phase = self

    # kong-pdk's channel, called inside the phase
    def put(self, message: Any) -> None:
        self.out.append(message)

    def get(self) -> Any:
        return self.glet.parent.switch()

    # the loop's side
    def resume(self, value: Any = None) -> Any:
        """Run the phase on; the message for Kong, or ``_DEFERRED``. A phase's exception is raised."""
        if self.glet:  # started (and not dead: an event is forgotten once its phase ends)
            self.glet.switch(value)
        else:  # the first run takes no value
            self.glet.switch()
        if self.out:
            return self.out.popleft()
        if self.glet.dead:
            raise PhaseError("the phase ended without a reply")
        return _DEFERRED


def _phase_in_loop() -> tuple[Loop, _PhaseGreenlet] | None:
    """The loop and the phase calling, when a phase run by :class:`Loop` calls; None elsewhere
    (tests, other servers)."""
    current = greenlet.getcurrent()
    loop = _LOOP
    if loop is None or not isinstance(current, _PhaseGreenlet):
        return None
    return loop, current


def offload(fn: Callable[[], T]) -> T:
    """``fn()`` on a worker thread while the loop serves other requests, when called in a phase
    run by :class:`Loop`; elsewhere (tests, other servers) just ``fn()``."""
    running = _phase_in_loop()
    if running is None:
        return fn()
    loop, current = running
    future = loop.executor.submit(fn)
    future.add_done_callback(lambda _f: loop.wake(current.phase))
    current.parent.switch()  # back to the loop until the work is done
    return future.result()


def when_idle(fn: Callable[[], None]) -> None:
    """``fn()`` once the loop has no connection to serve, when called in a phase run by
    :class:`Loop`; elsewhere (tests, other servers) just ``fn()``. ``fn`` must not raise."""
    running = _phase_in_loop()
    if running is None:
        fn()
        return
    running[0].idle.append(fn)


class _Conn:
    __slots__ = ("sock", "unpacker")

    def __init__(self, sock: socket.socket) -> None:
        self.sock = sock
        self.unpacker = msgpack.Unpacker(strict_map_key=False)


_LOOP: Loop | None = None


class Loop:
    """The server: ``ps`` is kong-pdk's ``PluginServer`` (instances, plugin info, status)."""

    def __init__(self, ps: Any, path: str, listen_queue_size: int = 4096) -> None:
        from kong_pdk.exception import PDKException, PluginServerException
        from kong_pdk.pdk import Kong

        self._no_such = PluginServerException  # kong-pdk's error for an unknown instance or event
        self._kong = Kong  # kong-pdk's PDK object over a phase's channel
        self.ps = ps
        self.path = path
        self.listen_queue_size = listen_queue_size
        self.events: dict[int, Phase] = {}
        self.next_eid = 0
        self.executor = ThreadPoolExecutor(OFFLOAD_WORKERS, thread_name_prefix="aws-masker-offload")
        self._expected = (PluginServerException, PDKException)
        self._woken: deque[Phase] = deque()
        self.idle: deque[Callable[[], None]] = deque()  # when_idle's callables, oldest first
        self._wake_r, self._wake_w = os.pipe()
        os.set_blocking(self._wake_r, False)
        os.set_blocking(self._wake_w, False)
        self._selector = selectors.DefaultSelector()
        self._stopping = threading.Event()
        self._pipe_lock = threading.Lock()  # the wake pipe is written by other threads, closed by the loop
        self._pipe_open = True

    # -- called from other threads ---------------------------------------------------------------
    def wake(self, phase: Phase) -> None:
        self._woken.append(phase)
        self._poke()

    def stop(self) -> None:
        self._stopping.set()
        self._poke()

    def _poke(self) -> None:
        """Wake the loop's select. Nothing once the loop has ended: its pipe is closed then, and the
        descriptor's number may already be another file's (offloaded work can finish after the end)."""
        with self._pipe_lock:
            if self._pipe_open:
                with contextlib.suppress(BlockingIOError):  # the pipe is full: the loop wakes anyway
                    os.write(self._wake_w, b"!")

    # -- the loop ----------------------------------------------------------------------------------
    def serve_forever(self) -> None:
        global _LOOP
        with contextlib.suppress(FileNotFoundError):
            os.remove(self.path)
        # bound under another name and renamed once listening: whoever waits for the socket file to
        # appear (Kong, the local gateway, tests) can connect as soon as it does, never refused
        staging = f"{self.path}.{os.getpid()}"
        if len(os.fsencode(staging)) >= SUN_PATH_MAX:  # no room for a suffix: bind the path itself
            staging = self.path
        with contextlib.suppress(FileNotFoundError):
            os.remove(staging)
        listener = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        listener.bind(staging)
        listener.listen(self.listen_queue_size)
        if staging != self.path:
            os.rename(staging, self.path)
        listener.setblocking(False)
        self._selector.register(listener, selectors.EVENT_READ, None)
        self._selector.register(self._wake_r, selectors.EVENT_READ, "wake")
        self.ps.logger.info("server started at path " + self.path)
        _LOOP = self
        try:
            idle = self.idle
            while not self._stopping.is_set():
                ready = self._selector.select(0 if idle else ORPHAN_CHECK)
                for key, _ in ready:
                    if key.data is None:
                        self._accept(listener)
                    elif key.data == "wake":
                        self._drain_wakes()
                    else:
                        self._readable(key.data)
                if idle and (not ready or len(idle) > IDLE_BACKLOG):
                    self._run_idle()
                if os.getppid() == 1:  # parent dead, process adopted by init
                    self.ps.logger.info("Kong exits, terminating...")
                    return
        finally:
            while self.idle:  # the events of requests already answered
                self._run_idle()
            _LOOP = None
            self._selector.close()
            listener.close()
            with self._pipe_lock:
                self._pipe_open = False
                os.close(self._wake_r)
                os.close(self._wake_w)
            self.executor.shutdown(wait=False, cancel_futures=True)

    def _run_idle(self) -> None:
        try:
            self.idle.popleft()()
        except Exception as exc:  # when_idle's callables handle their own errors; never stop the loop
            log.error("deferred work failed: %s", type(exc).__name__)

    def _accept(self, listener: socket.socket) -> None:
        try:
            sock, _ = listener.accept()
        except (BlockingIOError, InterruptedError):
            return
        sock.setblocking(True)  # read only when readable; a reply is written whole (sendall)
        self._selector.register(sock, selectors.EVENT_READ, _Conn(sock))

    def _close(self, conn: _Conn) -> None:
        with contextlib.suppress(KeyError, ValueError):
            self._selector.unregister(conn.sock)
        conn.sock.close()

    def _readable(self, conn: _Conn) -> None:
        try:
            data = conn.sock.recv(RECV_SIZE)
        except OSError:
            data = b""
        if not data:
            self._close(conn)
            return
        conn.unpacker.feed(data)
        try:
            for message in conn.unpacker:
                self._dispatch(conn, message)
        except Exception as exc:  # undecodable input (e.g. invalid UTF-8): kong-pdk drops the connection
            log.error("rpc: dropping a connection: %s", type(exc).__name__)
            self._close(conn)

    def _send(self, conn: _Conn, msgid: int, error: Any, result: Any) -> None:
        try:
            conn.sock.sendall(msgpack.packb([1, msgid, error, result]))
        except OSError:
            self._close(conn)

    def _dispatch(self, conn: _Conn, message: Any) -> None:
        _, msgid, method, args = message
        ns, _, cmd = method.partition(".")
        if ns != "plugin":
            self._send(conn, msgid, f"RPC for {ns} is not supported", None)
            return
        name = _method_name(cmd)
        logger = self.ps.logger
        if "debug" not in vars(logger):  # kong-pdk's Logger replaces disabled levels per instance
            logger.debug(f"rpc: #{msgid} method: {method}")  # never the arguments: they carry requests
        if name == "handle_event":
            self._answer(conn, msgid, self._handle_event, conn, msgid, *args)
        elif name in STEP_METHODS or name == "step_error":
            self._answer(conn, msgid, self._step, conn, msgid, name == "step_error", *args)
        else:  # kong-pdk's own: plugin info, instances, status
            self._answer(conn, msgid, self._server_call, name, *args)

    def _server_call(self, name: str, *args: Any) -> Any:
        return getattr(self.ps, name)(*args)

    def _answer(self, conn: _Conn, msgid: int, run: Callable[..., Any], *args: Any) -> None:
        """Kong's call ``msgid`` answered with what ``run(*args)`` returns, or with the error it
        raises (nothing yet when the phase deferred: :meth:`_drain_wakes` answers it later)."""
        try:
            reply = run(*args)
        except self._expected as exc:  # kong-pdk's own messages, which Kong acts on
            self.ps.logger.warn(f"rpc: #{msgid} error: {exc}")
            self._send(conn, msgid, str(exc), None)
            return
        except Exception as exc:
            self.ps.logger.error(f"rpc: #{msgid} exception: {type(exc).__name__}")
            self._send(conn, msgid, type(exc).__name__, None)
            return
        if reply is not _DEFERRED:
            self._send(conn, msgid, None, reply)

    # -- events ------------------------------------------------------------------------------------
    def _handle_event(self, conn: _Conn, msgid: int, event: dict[str, Any]) -> Any:
        iid = event["InstanceId"]
        instance = self.ps.instances.get(iid)
        if instance is None:  # Kong expects the error to start with "no plugin instance"
            raise self._no_such(f"no plugin instance #{iid}")
        instance.reset_expire_ts()
        handler = getattr(instance.cls, event["EventName"])
        lua_style = self.ps.lua_style
        eid = self.next_eid
        self.next_eid = eid + 1

        kong = self._kong

        def run(phase: Phase) -> None:
            handler(kong(phase, lua_style).kong)
            phase.put(MSG_RET)

        phase = Phase(eid, run)
        self.events[eid] = phase
        return self._advance(phase, conn, msgid, None)

    def _step(self, conn: _Conn, msgid: int, is_error: bool, data: dict[str, Any]) -> Any:
        eid = data["EventId"]
        phase = self.events.get(eid)
        if phase is None:
            raise self._no_such(f"event id {eid} not found")
        value = data.get("Data")
        return self._advance(phase, conn, msgid, (None, value) if is_error else (value, None))

    def _advance(self, phase: Phase, conn: _Conn, msgid: int, value: Any) -> Any:
        """Run ``phase`` on with ``value``: its reply to Kong's call, or ``_DEFERRED``."""
        try:
            out = phase.resume(value)
        except BaseException:
            self.events.pop(phase.eid, None)
            raise
        if out is _DEFERRED:
            phase.reply_to = (conn, msgid)
            return _DEFERRED
        if out == MSG_RET or (isinstance(out, dict) and out.get("Method") in TERMINAL):
            self.events.pop(phase.eid, None)
        return {"Data": out, "EventId": phase.eid}

    def _drain_wakes(self) -> None:
        with contextlib.suppress(BlockingIOError):
            while os.read(self._wake_r, 4096):
                pass
        while self._woken:
            phase = self._woken.popleft()
            if phase.reply_to is None:
                continue
            conn, msgid = phase.reply_to
            phase.reply_to = None
            self._answer(conn, msgid, self._advance, phase, conn, msgid, None)


def install() -> None:
    """Serve kong-pdk's dedicated server with :class:`Loop` (threads mode's entry point)."""
    from kong_pdk import listener

    def serve_forever(self: Any) -> None:
        Loop(self.ps, self.path, self.listen_queue_size).serve_forever()

    listener.UnixStreamServer.serve_forever = serve_forever
