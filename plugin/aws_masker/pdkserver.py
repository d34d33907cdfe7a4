"""kong-pdk's plugin server, with its per-message and per-phase overhead taken out.

``aws-masker-server`` is kong-pdk's dedicated server (instances, events, locks, the protocol are
kong-pdk's own); ``install`` replaces three of its internals with cheaper equivalents before it
starts. Each removes work kong-pdk does on every round trip with Kong, which a request pays:

- The RPC loop (``kong_pdk.listener.Server.handle``) formats every call's arguments and result into
  a debug line before it knows whether debug logging is on (only with ``-v``): with a request body
  in the arguments that is a repr of the whole body, twice per request, and with ``-v`` it logs
  them: request headers, bodies, tokens. It also converts the method name with a regex on every
  call. The replacement does the same steps, in the same order, with the same replies, but its debug
  lines name the method only, an unexpected exception is logged and answered with its class only
  (Kong logs the answer), and it converts each name once.
- The channels between the RPC thread and a phase's thread: the C ``queue.SimpleQueue`` instead of
  the pure-Python ``queue.Queue`` (kong-pdk only calls ``get`` and ``put`` and swaps the bound
  ``get`` methods, which a subclass's instance dict allows).
- A thread per phase: kong-pdk starts a new daemon thread for every phase of every request. The
  replacement runs the phase on a pooled daemon thread, starting one only when none is idle, so it
  grows to as many phases as are in flight at once (each waits on Kong between its PDK calls), like
  kong-pdk, and lets a thread idle for ``IDLE_EXIT`` seconds go.

make bench-gateway measured the three together (docs/benchmarks.md).
"""

from __future__ import annotations

import queue
import re
import sys
import threading
from collections.abc import Callable
from typing import Any

IDLE_EXIT = 60.0
_CMD = re.compile("([a-z])([A-Z])")
_names: dict[str, str] = {}


def _method_name(cmd: str) -> str:
    name = _names.get(cmd)
    if name is None:
        name = cmd[0].lower() + _CMD.sub(lambda m: f"{m.group(1)}_{m.group(2).lower()}", cmd[1:])
        _names[cmd] = name
    return name


def install() -> None:
    import msgpack
    from kong_pdk import listener, server
    from kong_pdk.exception import PDKException, PluginServerException

    write_response, write_error = listener.write_response, listener.write_error

    def handle(self: Any, fd: Any, address: Any, *_: Any) -> None:
        unpacker = msgpack.Unpacker(listener.WrapSocket(fd), strict_map_key=False)
        logger = self.logger
        debug = "debug" not in vars(logger)  # kong-pdk's Logger replaces disabled levels per instance
        for _, msgid, method, args in unpacker:
            ns, cmd = method.split(".")
            if ns != "plugin":
                write_error(fd, msgid, f"RPC for {ns} is not supported")
                continue
            try:
                if debug:  # never the arguments or the result: they carry the request
                    logger.debug(f"rpc: #{msgid} method: {method}")
                ret = getattr(self.ps, _method_name(cmd))(*args)
                if debug:
                    logger.debug(f"rpc: #{msgid} returned")
                write_response(fd, msgid, ret)
            except (PluginServerException, PDKException) as ex:
                # kong-pdk's own messages ("no plugin instance #3", which Kong acts on)
                logger.warn(f"rpc: #{msgid} error: {ex}")
                write_error(fd, msgid, str(ex))
            except Exception as ex:
                logger.error(f"rpc: #{msgid} exception: {type(ex).__name__}")
                write_error(fd, msgid, type(ex).__name__)

    listener.Server.handle = handle
    server.Queue = _Channel
    server.threading = _PooledThreading()


class _Channel(queue.SimpleQueue):  # type: ignore[type-arg]
    pass


class PhasePool:
    """Daemon threads that run phases; one is started only when none is idle."""

    def __init__(self, idle_exit: float = IDLE_EXIT) -> None:
        self.idle_exit = idle_exit
        self._work: queue.SimpleQueue[Callable[[], None]] = queue.SimpleQueue()
        self._lock = threading.Lock()
        self.idle = 0
        self.started = 0
        self.alive = 0

    def submit(self, fn: Callable[[], None]) -> None:
        with self._lock:  # the work is queued before the lock is released (see _worker)
            if self.idle:
                self.idle -= 1
            else:
                self.started += 1
                self.alive += 1
                threading.Thread(target=self._worker, name="aws-masker-phase", daemon=True).start()
            self._work.put(fn)

    def _worker(self) -> None:
        while True:
            try:
                fn = self._work.get(timeout=self.idle_exit)
            except queue.Empty:
                with self._lock:
                    if not self._work.empty():
                        continue  # reserved just now: the work is there
                    self.idle -= 1
                    self.alive -= 1
                    return
            try:
                fn()
            except BaseException:  # like an exception ending a thread: reported, never raised here
                threading.excepthook(threading.ExceptHookArgs((*sys.exc_info(), None)))
            with self._lock:
                self.idle += 1


_POOL = PhasePool()


class _PooledThread:
    """The part of ``threading.Thread`` kong-pdk's threads mode uses for a phase."""

    def __init__(self, target: Callable[..., None], args: tuple[Any, ...] = ()) -> None:
        self._target, self._args = target, args

    def setDaemon(self, daemonic: bool) -> None:  # kong-pdk calls it
        pass

    def start(self) -> None:
        _POOL.submit(lambda: self._target(*self._args))


class _PooledThreading:
    """``threading`` as kong_pdk.server sees it: pooled phase threads, the rest unchanged."""

    Thread = _PooledThread

    def __getattr__(self, name: str) -> Any:
        return getattr(threading, name)
