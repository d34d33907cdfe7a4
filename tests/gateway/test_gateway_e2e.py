"""End to end through the real kong-pdk plugin server (``fixtures/echo_plugin.py``)."""

from __future__ import annotations

import gc
import gzip
import json
import logging
import re
from collections.abc import Callable

import pytest
from gateway_harness import GatewayHarness, kong_yml, route

from aws_masker_gateway.context import RequestContext

pytestmark = pytest.mark.e2e

UNEXPECTED = {"message": "An unexpected error occurred"}


def upstream_hits(gw: GatewayHarness, path: str) -> int:
    return sum(1 for r in gw.upstream.requests if r.path == path)


def test_access_rewrites_the_body_before_the_upstream(shared_gateway: GatewayHarness) -> None:
    gw = shared_gateway
    res = gw.request("POST", "/upper/x?a=1", "hello secret", {"Content-Type": "text/plain"})
    assert res.status == 200
    assert res.body == b"HELLO SECRET"
    seen = gw.upstream.requests[-1]
    assert (seen.path, seen.query, seen.body) == ("/svc/x", "a=1", b"HELLO SECRET")
    assert seen.headers["X-Echo-Tag"] == "t1"
    assert seen.headers["Content-Length"] == "12"
    assert re.fullmatch(r"[0-9a-f]{32}", res.request_id)
    assert res.headers["Via"] == "1.1 kong/3.9.1"
    assert int(res.headers["X-Kong-Proxy-Latency"]) >= 0 and int(res.headers["X-Kong-Upstream-Latency"]) >= 0
    assert res.headers["Server"] == "test-upstream"


def test_pdk_calls_are_counted_per_plugin(shared_gateway: GatewayHarness) -> None:
    res = shared_gateway.request("POST", "/upper", "abc")
    record = shared_gateway.record(res.request_id)
    # access: get_raw_body, set_raw_body, set_header, ctx.shared.set; response: none;
    # log: ctx.shared.get, log.notice
    assert record.pdk_calls == {"echo": 6}
    assert record.route == "upper" and record.status == 200 and record.protocol_errors == []


def test_start_instance_config_as_the_plugin_sees_it(shared_gateway: GatewayHarness) -> None:
    res = shared_gateway.request("GET", "/inspect")
    config = res.json()["config"]
    route_id = shared_gateway.gateway.config.routes[7].id
    assert shared_gateway.gateway.config.routes[7].name == "inspect"
    assert config["action"] == "inspect" and config["tag"] == "v1" and config["ratio"] == 0.5
    assert config["marker_file"] is None  # unset field without default -> JSON null
    assert config["route_id"] == route_id and "service_id" not in config
    plugin = next(p for p in shared_gateway.gateway.config.plugins if p.route_id == route_id)
    assert config["__plugin_id"] == plugin.id
    assert isinstance(config["__seq__"], int) and config["__ws_id"]
    assert config["__key__"] == f"plugins:echo:{route_id}::::{config['__ws_id']}"


def test_fix_mmap_shapes_seen_by_python(shared_gateway: GatewayHarness) -> None:
    res = shared_gateway.request(
        "GET",
        "/inspect/./a?x=1&x=2&flag&empty=",
        headers=[("X-Multi", "1"), ("X-Multi", "2"), ("X-One", "v")],
    )
    report = res.json()
    assert report["headers"]["x-multi"] == ["1", "2"]
    assert report["headers"]["x-one"] == ["v"]
    assert report["header_x_multi"] == "1"
    assert report["query"] == {"x": ["1", "2"], "flag": [], "empty": [""]}
    assert report["method"] == "GET" and report["path"] == "/inspect/a"


def test_ctx_shared_values_round_trip_with_lua_semantics(shared_gateway: GatewayHarness) -> None:
    seen = shared_gateway.request("GET", "/ctx-types").json()
    assert seen == {
        "str": "text",
        "int": 42,
        "float": 1.5,
        "bool": True,
        "dict": [],
        "list": [1, 2],
        "map": {"a": "b"},
    }


def test_unknown_pdk_method_replies_without_data(shared_gateway: GatewayHarness) -> None:
    res = shared_gateway.request("GET", "/unknown-method")
    assert (res.status, res.json()) == (200, {"result": None})


def test_response_exit_restores_body_and_keeps_upstream_headers(shared_gateway: GatewayHarness) -> None:
    res = shared_gateway.request("POST", "/restore", "Mixed Case")
    assert res.status == 200
    assert res.body == b"mixed case"  # access uppercased it, response lowercased the upstream echo
    assert res.headers["X-Restored"] == "yes"
    assert res.headers["X-Upstream-Path"] == "/svc"  # copied from the upstream before response ran
    assert res.headers["Content-Length"] == str(len(b"mixed case"))
    record = shared_gateway.record(res.request_id)
    assert record.pdk_calls["echo"] == 4 + 3 + 2


def test_exit_in_access_never_reaches_upstream(shared_gateway: GatewayHarness) -> None:
    before = upstream_hits(shared_gateway, "/svc")
    res = shared_gateway.request("POST", "/exit-access", "x")
    assert res.status == 403
    assert res.json() == {"message": "blocked"}
    assert res.headers["X-Blocked"] == "yes"
    assert res.headers["Content-Type"] == "application/json; charset=utf-8"
    assert res.headers["Content-Length"] == str(len(res.body))
    assert res.headers["Server"] == "kong/3.9.1" and "X-Kong-Response-Latency" in res.headers
    assert upstream_hits(shared_gateway, "/svc") == before
    record = shared_gateway.record(res.request_id)
    assert record.pdk_calls == {"echo": 1 + 2}  # exit in access; response never ran; log ran


def test_nil_hole_in_args_is_flagged_and_truncates_like_kong(shared_gateway: GatewayHarness) -> None:
    res = shared_gateway.request("GET", "/none-hole")
    assert res.status == 403 and "X-Dropped" not in res.headers and res.body == b""
    record = shared_gateway.record(res.request_id)
    assert record.protocol_errors and "nil at Args[2] of kong.response.exit" in record.protocol_errors[0]


@pytest.mark.parametrize(
    ("path", "error"),
    [
        (
            "/wrong-phase",
            "function cannot be called in access phase (only in: response, header_filter, body_filter, log)",
        ),
        (
            "/set-body-in-response",
            "function cannot be called in response phase (only in: rewrite, access, balancer)",
        ),
        ("/resp-raw-body", "function cannot be called in response phase (only in: body_filter)"),
    ],
)
def test_phase_restrictions_are_lua_errors(shared_gateway: GatewayHarness, path: str, error: str) -> None:
    res = shared_gateway.request("POST", path, "x")
    assert res.status == 500
    assert res.json()["message"] == UNEXPECTED["message"]
    record = shared_gateway.record(res.request_id)
    assert any(error in e for e in record.plugin_errors)


def test_phase_error_in_access_is_kongs_exact_body(shared_gateway: GatewayHarness) -> None:
    before = upstream_hits(shared_gateway, "/svc")
    res = shared_gateway.request("POST", "/wrong-phase", "x")
    assert res.body == b'{"message":"An unexpected error occurred"}'
    assert upstream_hits(shared_gateway, "/svc") == before


def test_body_over_client_buffer_is_500_without_argument(shared_gateway: GatewayHarness) -> None:
    before = upstream_hits(shared_gateway, "/svc")
    res = shared_gateway.request("POST", "/upper", b"a" * 9000)
    assert res.status == 500 and res.json() == UNEXPECTED
    assert upstream_hits(shared_gateway, "/svc") == before
    ok = shared_gateway.request("POST", "/upper", b"a" * 8192)  # exactly the buffer size stays in memory
    assert ok.status == 200 and ok.body == b"A" * 8192


def test_get_raw_body_zero_reads_spilled_bodies(shared_gateway: GatewayHarness) -> None:
    body = b"x" * 300_000
    res = shared_gateway.request("POST", "/large-zero", body)
    assert res.status == 200 and res.body == body.upper()
    assert shared_gateway.upstream.requests[-1].body == body.upper()


def test_get_raw_body_with_a_limit(shared_gateway: GatewayHarness) -> None:
    assert shared_gateway.request("POST", "/large-limited", b"y" * 9000).status == 500  # spilled and > limit
    small = shared_gateway.request(
        "POST", "/large-limited", b"y" * 500
    )  # in memory: the limit does not apply
    assert small.status == 200 and small.body == b"Y" * 500


def test_guard_lets_marked_requests_through(shared_gateway: GatewayHarness) -> None:
    res = shared_gateway.request("POST", "/guarded", "data")
    assert res.status == 200 and res.body == b"DATA"


def test_guard_refuses_unmarked_requests(shared_gateway: GatewayHarness) -> None:
    before = upstream_hits(shared_gateway, "/svc")
    res = shared_gateway.request("POST", "/guard-only", "data")
    assert res.status == 503 and res.json() == {"message": "masking unavailable"}
    assert upstream_hits(shared_gateway, "/svc") == before


def test_no_route(shared_gateway: GatewayHarness) -> None:
    res = shared_gateway.request("GET", "/nowhere")
    assert res.status == 404
    assert res.json() == {"message": "no Route matched with those values", "request_id": res.request_id}


def test_strip_path_and_service_path_joining(shared_gateway: GatewayHarness) -> None:
    res = shared_gateway.request("POST", "/claude-proxy/v1/messages?beta=true", "{}")
    assert res.status == 200 and res.headers["X-Upstream-Path"] == "/v1/messages"
    assert shared_gateway.upstream.requests[-1].query == "beta=true"
    res = shared_gateway.request("POST", "/v1/messages", "{}")
    assert res.headers["X-Upstream-Path"] == "/v1/messages/v1/messages"
    assert shared_gateway.request("GET", "/claude-proxy/v1/messages").status == 404  # POST-only route


def test_proxy_headers(shared_gateway: GatewayHarness) -> None:
    res = shared_gateway.request(
        "GET",
        "/plain/a",
        headers=[
            ("Connection", "keep-alive, X-Hop"),
            ("X-Hop", "1"),
            ("Accept-Encoding", "identity"),
            ("Via", "1.0 a"),
        ],
    )
    assert res.status == 200
    seen = shared_gateway.upstream.requests[-1].headers
    assert "X-Hop" not in seen
    assert seen["Accept-Encoding"] == "identity"
    assert seen["Host"] == f"127.0.0.1:{shared_gateway.upstream.port}"
    assert seen["X-Forwarded-For"] == "127.0.0.1" and seen["X-Real-IP"] == "127.0.0.1"
    assert seen["X-Forwarded-Proto"] == "http" and seen["X-Forwarded-Host"] == "127.0.0.1"
    assert seen["X-Forwarded-Port"] == str(shared_gateway.port)
    assert seen["X-Forwarded-Path"] == "/plain/a" and seen["X-Forwarded-Prefix"] == "/plain"
    assert seen["Via"] == "1.0 a, 1.1 kong/3.9.1"


def test_compressed_upstream_bodies_pass_through(shared_gateway: GatewayHarness) -> None:
    res = shared_gateway.request("POST", "/plain", "zip me", {"X-Test-Gzip": "1", "Accept-Encoding": "gzip"})
    assert res.headers["Content-Encoding"] == "gzip"
    assert gzip.decompress(res.body) == b"zip me"


def test_lua_header_and_body_filters(shared_gateway: GatewayHarness) -> None:
    res = shared_gateway.request("POST", "/lua-filters", "body", {"X-Test-Status": "201"})
    assert res.status == 201 and res.headers["X-Lua-Status"] == "201" and res.body == b"[body]"


def test_upstream_connect_failure_is_502(shared_gateway: GatewayHarness) -> None:
    res = shared_gateway.request("GET", "/dead")
    assert res.status == 502
    assert res.json()["message"] == "An invalid response was received from the upstream server"


def test_upstream_timeout_is_504(shared_gateway: GatewayHarness) -> None:
    res = shared_gateway.request("GET", "/slow", headers={"X-Test-Sleep": "2"})
    assert res.status == 504 and res.json()["message"] == "The upstream server is timing out"


def test_request_log_line_has_no_secrets(
    shared_gateway: GatewayHarness, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG, logger="aws_masker_gateway")
    res = shared_gateway.request(
        "POST", "/upper/p?token=SECRET-Q", "SECRET-BODY AKIAIOSFODNN7EXAMPLE", {"Authorization": "SECRET-H"}
    )
    shared_gateway.record(res.request_id)
    lines = [r.getMessage() for r in caplog.records if r.name == "aws_masker_gateway.access"]
    line = next(m for m in lines if res.request_id in m)
    assert line.startswith("POST route=upper status=200 ")
    assert "pdk_calls=6" in line
    everything = "\n".join(r.getMessage() for r in caplog.records)
    for secret in ("SECRET-Q", "SECRET-BODY", "AKIAIOSFODNN7EXAMPLE", "SECRET-H"):
        assert secret not in everything


def test_json_bodies_from_python_exit(shared_gateway: GatewayHarness) -> None:
    body = json.loads(shared_gateway.request("GET", "/exit-access").body)
    assert body == {"message": "blocked"}


def test_concurrent_requests_stay_independent(shared_gateway: GatewayHarness) -> None:
    """Many requests in flight share pooled RPC connections and Lua state without mixing bodies."""
    from concurrent.futures import ThreadPoolExecutor

    def one(i: int) -> tuple[int, bytes, int]:
        path = "/guarded" if i % 2 else "/restore"
        res = shared_gateway.request("POST", path, f"Body-{i}")
        return res.status, res.body, i

    with ThreadPoolExecutor(max_workers=16) as pool:
        results = list(pool.map(one, range(64)))
    for status, body, i in results:
        assert status == 200
        assert body == (f"BODY-{i}" if i % 2 else f"body-{i}").encode()
    rpc = shared_gateway.echo.rpc
    assert rpc.pool.opened * 4 < rpc.calls  # pooled connections are reused, one RPC at a time each


def test_preserve_host_forwards_the_client_host(make_gateway: Callable[..., GatewayHarness]) -> None:
    gw = make_gateway(kong_yml(route("keep", "/keep", extra="preserve_host: true")))
    gw.request("GET", "/keep", headers={"Host": "api.example.test"})
    assert gw.upstream.requests[-1].headers["Host"] == "api.example.test"


def test_finished_requests_are_freed(shared_gateway: GatewayHarness) -> None:
    """A request holds its Lua table and the table its request (``handle``): a cycle through the Lua
    registry that no collector sees, unless the gateway breaks it when the request is over."""
    ids = set()
    for _ in range(20):
        res = shared_gateway.request("POST", "/guarded", "data")
        assert res.status == 200
        shared_gateway.record(res.request_id)
        ids.add(res.request_id)

    def survivors() -> int:
        shared_gateway.gateway.engine.runtime.execute("collectgarbage()")
        gc.collect()
        return sum(1 for o in gc.get_objects() if isinstance(o, RequestContext) and o.request_id in ids)

    assert shared_gateway.call(survivors) == 0
