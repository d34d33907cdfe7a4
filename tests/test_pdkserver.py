"""The plugin server's event loop (aws_masker/pdkserver.py), driven over its Unix socket the way
Kong drives it: pooled connections, one call at a time per connection, Steps on any connection.
tests/gateway and tests/e2e run the real aws-masker-server behind the local gateway as well."""

from __future__ import annotations

import os
import socket
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any, ClassVar

import msgpack
import pytest
from kong_pdk.logger import Logger
from kong_pdk.module import Module
from kong_pdk.server import PluginServer

from aws_masker import pdkserver

RELEASE = threading.Event()  # lets the offloaded work of the "offload" phase (and the "idle" work) finish
IDLE_RAN = threading.Event()
BIG = 2_000_000


class Plugin:
    def __init__(self, config: dict[str, Any]) -> None:
        self.config = config

    def access(self, kong: Any) -> None:
        mode = kong.request.get_header("x-mode")
        if mode == "exit":
            kong.response.exit(403, {"message": "no"})
            return
        if mode == "offload":
            done = pdkserver.offload(lambda: "done" if RELEASE.wait(30) else "timeout")
            kong.log.notice(done)
        elif mode == "idle":  # work that blocks the loop until RELEASE once it runs
            pdkserver.when_idle(lambda: IDLE_RAN.set() if RELEASE.wait(30) else None)
        elif mode == "idle-raise":
            pdkserver.when_idle(lambda: 1 / 0)
        elif mode == "big":
            kong.service.request.set_raw_body("x" * BIG)
        elif mode == "raise":
            raise RuntimeError("after a call")
        kong.log.notice("bye")

    def log(self, kong: Any) -> None:
        raise RuntimeError("before any call")


class _Mod:
    Plugin = Plugin
    Schema: ClassVar[list[Any]] = []
    version = "1.0"
    priority = 1


class Client:
    def __init__(self, path: str) -> None:
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self.sock.settimeout(20)  # a hang fails the test instead of stalling it
        self.sock.connect(path)
        self.unpacker = msgpack.Unpacker(strict_map_key=False)
        self.msgid = 0

    def send(self, method: str, arg: Any) -> int:
        self.msgid += 1
        self.sock.sendall(msgpack.packb([0, self.msgid, method, [arg]]))
        return self.msgid

    def reply(self) -> tuple[Any, Any]:
        while True:
            for kind, _msgid, error, result in self.unpacker:
                assert kind == 1
                return error, result
            data = self.sock.recv(1 << 16)
            if not data:
                raise EOFError
            self.unpacker.feed(data)

    def call(self, method: str, arg: Any) -> tuple[Any, Any]:
        self.send(method, arg)
        return self.reply()


@pytest.fixture
def server(tmp_path: Path) -> Iterator[tuple[str, int, pdkserver.Loop]]:
    ps = PluginServer(loglevel=Logger.WARNING, name="test", lua_style=False)
    ps.plugins["t"] = Module("t", module=_Mod)
    path = str(tmp_path / "t.sock")
    loop = pdkserver.Loop(ps, path)
    thread = threading.Thread(target=loop.serve_forever, daemon=True)
    thread.start()
    for _ in range(500):
        if Path(path).exists():
            break
        threading.Event().wait(0.01)
    error, started = Client(path).call("plugin.StartInstance", {"Name": "t", "Config": "{}"})
    assert error is None
    RELEASE.clear()
    IDLE_RAN.clear()
    yield path, started["Id"], loop
    RELEASE.set()
    loop.stop()
    thread.join(10)


def start(client: Client, iid: int, phase: str = "access") -> dict[str, Any]:
    error, result = client.call("plugin.HandleEvent", {"InstanceId": iid, "EventName": phase})
    assert error is None, error
    return result


def step(client: Client, eid: int, data: Any) -> tuple[Any, Any]:
    return client.call("plugin.Step", {"EventId": eid, "Data": data})


def test_method_names_convert_like_kong_pdk() -> None:
    for cmd, name in (
        ("HandleEvent", "handle_event"),
        ("StepMultiMap", "step_multi_map"),
        ("GetStatus", "get_status"),
        ("Step", "step"),
    ):
        assert pdkserver._method_name(cmd) == name


def test_a_phase_is_a_conversation_of_calls_and_steps(server: tuple[str, int, Any]) -> None:
    path, iid, _ = server
    kong = Client(path)
    first = start(kong, iid)
    assert first["Data"] == {"Method": "kong.request.get_header", "Args": ["x-mode"]}
    eid = first["EventId"]
    error, second = step(kong, eid, None)
    assert error is None
    assert second == {"Data": {"Method": "kong.log.notice", "Args": ["bye"]}, "EventId": eid}
    error, last = step(kong, eid, None)
    assert error is None and last == {"Data": "ret", "EventId": eid}
    error, _ = step(kong, eid, None)  # the event is gone once it returned
    assert error == f"event id {eid} not found"


def test_steps_may_come_on_any_pooled_connection(server: tuple[str, int, Any]) -> None:
    path, iid, _ = server
    a, b, c = Client(path), Client(path), Client(path)
    one, two = start(a, iid), start(b, iid)
    assert one["EventId"] != two["EventId"]
    # the second event finishes first, on other connections than the one it started on
    assert step(c, two["EventId"], None)[1]["Data"]["Method"] == "kong.log.notice"
    assert step(a, two["EventId"], None)[1]["Data"] == "ret"
    assert step(b, one["EventId"], None)[1]["Data"]["Method"] == "kong.log.notice"
    assert step(c, one["EventId"], None)[1]["Data"] == "ret"


def test_a_terminal_call_ends_the_event(server: tuple[str, int, Any]) -> None:
    path, iid, _ = server
    kong = Client(path)
    eid = start(kong, iid)["EventId"]
    error, reply = step(kong, eid, "exit")
    assert error is None
    assert reply["Data"] == {"Method": "kong.response.exit", "Args": [403, {"message": "no"}]}
    assert step(kong, eid, None)[0] == f"event id {eid} not found"


def test_a_phase_that_raises_gets_an_error_reply_not_a_hang(server: tuple[str, int, Any]) -> None:
    path, iid, _ = server
    kong = Client(path)
    error, result = kong.call("plugin.HandleEvent", {"InstanceId": iid, "EventName": "log"})
    assert error == "RuntimeError" and result is None  # the class only: never a message with input
    eid = start(kong, iid)["EventId"]
    assert step(kong, eid, "raise") == ("RuntimeError", None)
    assert step(kong, eid, None)[0] == f"event id {eid} not found"
    assert start(kong, iid)["Data"]["Method"] == "kong.request.get_header"  # the server serves on


def test_offloaded_work_leaves_the_loop_serving_others(server: tuple[str, int, Any]) -> None:
    path, iid, _ = server
    a, b = Client(path), Client(path)
    slow = start(a, iid)["EventId"]
    a.send("plugin.Step", {"EventId": slow, "Data": "offload"})  # its reply waits on RELEASE
    # meanwhile another request goes through from start to end on another connection
    other = start(b, iid)["EventId"]
    assert step(b, other, None)[1]["Data"]["Method"] == "kong.log.notice"
    assert step(b, other, None)[1]["Data"] == "ret"
    RELEASE.set()
    error, reply = a.reply()
    assert error is None
    assert reply == {"Data": {"Method": "kong.log.notice", "Args": ["done"]}, "EventId": slow}
    assert step(a, slow, None)[1]["Data"]["Method"] == "kong.log.notice"
    assert step(a, slow, None)[1]["Data"] == "ret"


def test_offload_outside_the_loop_runs_inline() -> None:
    assert pdkserver.offload(lambda: threading.current_thread()) is threading.current_thread()


def test_idle_work_runs_after_the_reply_and_then_the_loop_serves_on(server: tuple[str, int, Any]) -> None:
    path, iid, _ = server
    kong = Client(path)
    eid = start(kong, iid)["EventId"]
    # the work blocks the loop once it runs: had it run before the reply, this would time out
    error, reply = step(kong, eid, "idle")
    assert error is None and reply["Data"]["Method"] == "kong.log.notice"
    assert not IDLE_RAN.is_set()
    RELEASE.set()
    assert IDLE_RAN.wait(10)
    assert step(kong, eid, None)[1]["Data"] == "ret"


def test_failing_idle_work_is_logged_and_the_loop_serves_on(
    server: tuple[str, int, Any], caplog: pytest.LogCaptureFixture
) -> None:
    path, iid, loop = server
    kong = Client(path)
    eid = start(kong, iid)["EventId"]
    assert step(kong, eid, "idle-raise")[1]["Data"]["Method"] == "kong.log.notice"
    assert step(kong, eid, None)[1]["Data"] == "ret"
    for _ in range(500):
        if "deferred work failed: ZeroDivisionError" in caplog.text:
            break
        threading.Event().wait(0.01)
    assert "deferred work failed: ZeroDivisionError" in caplog.text
    assert not loop.idle
    assert start(kong, iid)["Data"]["Method"] == "kong.request.get_header"


def test_waking_a_loop_that_has_ended_writes_nowhere(tmp_path: Path) -> None:
    """Offloaded work can finish after the loop has ended and closed its wake pipe, whose numbers
    another file may have by then: the wake (and a second stop) must write nothing."""
    ps = PluginServer(loglevel=Logger.WARNING, name="test", lua_style=False)
    loop = pdkserver.Loop(ps, str(tmp_path / "t.sock"))
    thread = threading.Thread(target=loop.serve_forever, daemon=True)
    thread.start()
    for _ in range(500):
        if (tmp_path / "t.sock").exists():
            break
        threading.Event().wait(0.01)
    loop.stop()
    thread.join(10)
    assert not thread.is_alive()
    r, w = os.pipe()  # likely the numbers the loop's pipe had
    try:
        os.set_blocking(r, False)
        loop.wake(pdkserver.Phase(0, lambda phase: None))
        loop.stop()
        with pytest.raises(BlockingIOError):
            os.read(r, 1)  # nothing was written into whatever has those numbers now
    finally:
        os.close(r)
        os.close(w)


def test_idle_work_outside_the_loop_runs_inline() -> None:
    ran: list[int] = []
    pdkserver.when_idle(lambda: ran.append(1))
    assert ran == [1]


def test_a_large_reply_arrives_whole(server: tuple[str, int, Any]) -> None:
    path, iid, _ = server
    kong = Client(path)
    eid = start(kong, iid)["EventId"]
    error, reply = step(kong, eid, "big")
    assert error is None and reply["Data"]["Args"] == ["x" * BIG]


def test_kong_pdk_errors_are_kept_word_for_word(server: tuple[str, int, Any]) -> None:
    path, _, _ = server
    kong = Client(path)
    assert kong.call("plugin.HandleEvent", {"InstanceId": 99, "EventName": "access"}) == (
        "no plugin instance #99",
        None,
    )
    assert kong.call("other.Thing", {})[0] == "RPC for other is not supported"
    error, info = kong.call("plugin.GetPluginInfo", "t")
    assert error is None and info["Name"] == "t" and info["Phases"] == ["log", "access"]


def test_undecodable_input_drops_only_that_connection(server: tuple[str, int, Any]) -> None:
    path, iid, _ = server
    bad, good = Client(path), Client(path)
    bad.sock.sendall(b"\x94\x00\x01\xa4\xff\xfe\xfd\xfc\x90")  # a method name that is not UTF-8
    with pytest.raises(EOFError):
        bad.reply()
    assert start(good, iid)["Data"]["Method"] == "kong.request.get_header"


def test_the_socket_file_appears_only_once_it_accepts(tmp_path: Path) -> None:
    """Kong (and the local gateway) connect as soon as the socket file exists: it must not exist
    before the server listens (bound then renamed), or the first connection is refused."""
    for attempt in range(20):
        path = str(tmp_path / f"r{attempt}.sock")
        loop = pdkserver.Loop(PluginServer(loglevel=Logger.WARNING, name="r", lua_style=False), path)
        thread = threading.Thread(target=loop.serve_forever, daemon=True)
        thread.start()
        while not Path(path).exists():
            pass
        with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as sock:
            sock.connect(path)  # ConnectionRefusedError when the file came before listen()
        loop.stop()
        thread.join(10)
        assert sorted(p.name for p in tmp_path.iterdir() if p.name.startswith(f"r{attempt}.")) == [
            f"r{attempt}.sock"
        ]
