"""Kong's fail-open semantics against the real plugin server, and the post-function guard closing them.

Each test gets its own gateway and plugin server, because these tests kill, wedge or restart it.
"""

from __future__ import annotations

import signal
import sys
import threading
import time
from collections.abc import Callable
from pathlib import Path

import pytest
from gateway_harness import ECHO_PLUGIN, GatewayHarness, HttpResult, guard_plugin, kong_yml, route

pytestmark = pytest.mark.e2e

Factory = Callable[..., GatewayHarness]


def wait_for(predicate: Callable[[], bool], timeout: float = 10.0, what: str = "condition") -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(0.01)


def test_exception_after_first_pdk_call_fails_open(make_gateway: Factory) -> None:
    gw = make_gateway(
        kong_yml(
            route("boom", "/boom", "{name: echo, config: {action: raise_after}}"),
            route(
                "boom-guarded", "/boom-guarded", "{name: echo, config: {action: raise_after}}", guard_plugin()
            ),
        ),
        rpc_timeout=0.5,
    )
    res = gw.request("POST", "/boom", "secret data")
    # Kong's behaviour: the Step never gets a reply -> "no data" -> logged -> request continues unmodified
    assert res.status == 200 and res.body == b"secret data"
    assert gw.upstream.requests[-1].body == b"secret data"
    assert any("no data" in e for e in gw.record(res.request_id).plugin_errors)
    guarded = gw.request("POST", "/boom-guarded", "secret data")
    assert guarded.status == 503 and guarded.json() == {"message": "masking unavailable"}
    assert len(gw.upstream.requests) == 1


def test_exception_before_first_pdk_call_wedges_the_server(make_gateway: Factory) -> None:
    """docs/kong-protocol.md §4: the server keeps e_lock; every later event of every route hangs."""
    gw = make_gateway(
        kong_yml(
            route("early", "/early", "{name: echo, config: {action: raise_before}}"),
            route("upper", "/upper", "{name: echo}", guard_plugin()),
        ),
        rpc_timeout=0.5,
    )
    first = gw.request("POST", "/early", "abc")
    assert first.status == 200 and first.body == b"abc"  # fail-open after the read timeout
    healthy_route = gw.request("POST", "/upper", "abc")
    assert healthy_route.status == 503  # the guard refuses what the wedged server could not mask
    errors = gw.record(healthy_route.request_id).plugin_errors
    assert any("no data" in e for e in errors)


def test_guard_when_plugin_server_is_killed_mid_request(make_gateway: Factory, tmp_path: Path) -> None:
    marker = tmp_path / "reached"
    plugin = f'{{name: echo, config: {{action: hang, marker_file: "{marker}"}}}}'
    gw = make_gateway(kong_yml(route("hang", "/hang", plugin, guard_plugin())))
    result: list[HttpResult] = []
    worker = threading.Thread(target=lambda: result.append(gw.request("POST", "/hang", "secret")))
    worker.start()
    wait_for(marker.exists, what="the plugin to reach its first PDK call")
    gw.process.send_signal(signal.SIGKILL)
    worker.join(20)
    assert result, "request did not finish"
    assert result[0].status == 503 and result[0].json() == {"message": "masking unavailable"}
    assert gw.upstream.requests == []
    assert any("no data" in e for e in gw.record(result[0].request_id).plugin_errors)


def test_connect_failure_with_cached_instance_fails_open(make_gateway: Factory) -> None:
    gw = make_gateway(
        kong_yml(
            route("upper", "/upper", "{name: echo}"),
            route("guarded", "/guarded", "{name: echo}", guard_plugin()),
        ),
        respawn=False,
    )
    assert gw.request("POST", "/upper", "abc").body == b"ABC"
    assert gw.request("POST", "/guarded", "abc").body == b"ABC"
    gw.process.send_signal(signal.SIGKILL)
    wait_for(lambda: gw.call(lambda: gw.process._task.done()), what="the server to be reaped")
    res = gw.request("POST", "/upper", "abc")
    assert res.status == 200 and res.body == b"abc"  # unmasked: Kong logs the connect error and proxies
    assert gw.upstream.requests[-1].body == b"abc"
    assert gw.record(res.request_id).plugin_errors
    assert gw.request("POST", "/guarded", "abc").status == 503


def test_no_plugin_instance_after_restart_is_retried(
    make_gateway: Factory, caplog: pytest.LogCaptureFixture
) -> None:
    gw = make_gateway(kong_yml(route("upper", "/upper", "{name: echo}")))
    assert gw.request("POST", "/upper", "one").body == b"ONE"
    old_pid = gw.process.pid
    gw.process.send_signal(signal.SIGKILL)
    wait_for(lambda: gw.process.pid != old_pid, what="the respawn")
    gw.wait_ready()
    res = gw.request("POST", "/upper", "two")
    assert res.status == 200 and res.body == b"TWO"
    kinds = [(e.kind, e.instance_id) for e in gw.echo.instances.events]
    assert kinds == [("start", 0), ("reset", 0), ("start", 0)]  # ids restart at 0 in the new server
    assert any("no plugin instance #0" in r.getMessage() for r in caplog.records)
    assert gw.process.spawn_count == 2


def test_config_change_starts_new_instance_and_closes_old(make_gateway: Factory) -> None:
    yml = kong_yml(route("upper", "/upper", '{name: echo, config: {tag: "a"}}'))
    gw = make_gateway(yml)
    assert gw.request("POST", "/upper", "x").status == 200
    assert gw.upstream.requests[-1].headers["X-Echo-Tag"] == "a"
    gw.call(
        lambda: gw.gateway.reload(yml.replace('tag: "a"', 'tag: "b"').replace("{upstream}", gw.upstream.url))
    )
    assert gw.request("POST", "/upper", "x").status == 200
    assert gw.upstream.requests[-1].headers["X-Echo-Tag"] == "b"
    events = gw.echo.instances.events
    assert [(e.kind, e.instance_id) for e in events] == [("start", 0), ("start", 1), ("close", 0)]
    assert events[0].config["__seq__"] != events[1].config["__seq__"]
    assert events[0].config["__plugin_id"] == events[1].config["__plugin_id"]
    status = gw.run(gw.echo.rpc.call("plugin.GetStatus", None))
    assert [i[b"Id"] for i in status[b"Plugins"][b"echo"][b"Instances"]] == [1]  # the old one is gone


def test_requests_before_the_server_listens_get_500(make_gateway: Factory) -> None:
    """Kong does not wait for the socket: StartInstance cannot connect -> 500 until the server is up."""
    gw = make_gateway(
        kong_yml(route("upper", "/upper", "{name: echo}")),
        wait_ready=False,
        env={
            "KONG_PLUGINSERVER_ECHO_START_CMD": "/bin/sh -c 'sleep 0.5; exec "
            f'{sys.executable} {ECHO_PLUGIN} --no-lua-style --kong-prefix "$0"\' {{prefix}}',
        },
    )
    early = gw.request("POST", "/upper", "x")
    assert early.status == 500 and early.json() == {"message": "An unexpected error occurred"}
    gw.wait_ready()
    assert gw.request("POST", "/upper", "x").body == b"X"
