"""The Lua restore plugin (kong/plugins/aws-masker-restore) loaded by the local gateway by name from
the Lua path, as Kong loads it, fed a state by a pre-function (no Python plugin involved)."""

from __future__ import annotations

import gzip
import json
from collections.abc import Callable
from pathlib import Path

import pytest
from gateway_harness import GatewayHarness, kong_yml, route

from aws_masker.tokens import token_for
from aws_masker_gateway.app import GatewayError

ROOT = Path(__file__).resolve().parents[2]
TOKEN = token_for(b"k", "EC2", "i-0123456789abcdef0")
STATE = json.dumps(
    {
        "v": 2,
        "tokens": {TOKEN: "i-0123456789abcdef0"},
        "cat": {"EC2": "ec2"},
        "masked": {"count": 1, "categories": {"ec2": 1}},
    }
)
ENV = {"KONG_PLUGINS": "bundled,echo,aws-masker-restore", "KONG_LUA_PACKAGE_PATH": f"{ROOT}/?.lua;;"}


def restore_yml(extra: str = "") -> str:
    pre = json.dumps(
        {"name": "pre-function", "config": {"access": [f"kong.ctx.shared.aws_masker = {json.dumps(STATE)}"]}}
    )
    restore = "{name: aws-masker-restore" + (f", config: {{{extra}}}" if extra else "") + "}"
    return kong_yml(route("r", "/r", pre, restore, extra="response_buffering: false"))


@pytest.fixture
def gw(make_gateway: Callable[..., GatewayHarness]) -> GatewayHarness:
    return make_gateway(restore_yml(), env=ENV)


def test_restores_an_answer_and_drops_content_length(gw: GatewayHarness) -> None:
    res = gw.request(
        "POST", "/r", json.dumps({"text": f"see {TOKEN}"}), {"X-Test-Content-Type": "application/json"}
    )
    assert json.loads(res.body) == {"text": "see i-0123456789abcdef0"}
    assert res.headers["Content-Length"] is None and res.headers["Transfer-Encoding"] == "chunked"


def test_a_compressed_answer_passes_byte_for_byte(gw: GatewayHarness) -> None:
    body = f"see {TOKEN}".encode()
    res = gw.request("POST", "/r", body, {"X-Test-Gzip": "1"})
    assert res.headers["Content-Encoding"] == "gzip" and gzip.decompress(res.body) == body
    assert res.headers["Content-Length"] == str(len(res.body))  # untouched, so still right


@pytest.mark.parametrize(("method", "status"), [("HEAD", "200"), ("GET", "204"), ("GET", "304")])
def test_bodiless_answers_are_left_alone(gw: GatewayHarness, method: str, status: str) -> None:
    """No body, no body filter (as in nginx): the plugin does not switch the answer to chunked."""
    res = gw.request(method, "/r", headers={"X-Test-Status": status})
    assert res.status == int(status) and res.body == b""
    assert res.headers["Transfer-Encoding"] is None


def test_the_config_field_is_validated(make_gateway: Callable[..., GatewayHarness]) -> None:
    with pytest.raises(Exception, match="max_held_bytes: value should be between 4096 and 104857600"):
        make_gateway(restore_yml("max_held_bytes: 10"), env=ENV)


def test_missing_from_the_lua_path_is_not_installed(make_gateway: Callable[..., GatewayHarness]) -> None:
    env = {**ENV, "KONG_LUA_PACKAGE_PATH": "/nonexistent/?.lua"}
    with pytest.raises(GatewayError, match="aws-masker-restore plugin is enabled but not installed"):
        make_gateway(restore_yml(), env=env)


def test_an_error_in_a_body_filter_cuts_the_connection(make_gateway: Callable[..., GatewayHarness]) -> None:
    broken = json.dumps({"name": "post-function", "config": {"body_filter": ["error('boom')"]}})
    gw = make_gateway(kong_yml(route("b", "/b", broken)), env=ENV)
    with pytest.raises(Exception):  # noqa: B017 - the client sees a cut connection, however it names it
        res = gw.request("POST", "/b", "x" * 100_000)
        assert len(res.body) < 100_000


def test_asks_the_upstream_for_identity_when_there_are_tokens(
    gw: GatewayHarness, make_gateway: Callable[..., GatewayHarness]
) -> None:
    gw.request("POST", "/r", "x", {"Accept-Encoding": "gzip, br"})
    assert gw.upstream.requests[-1].headers["Accept-Encoding"] == "identity"
    empty = json.dumps({"v": 2, "tokens": {}, "cat": {}, "masked": {}})
    pre = json.dumps(
        {"name": "pre-function", "config": {"access": [f"kong.ctx.shared.aws_masker = {json.dumps(empty)}"]}}
    )
    other = make_gateway(kong_yml(route("e", "/e", pre, "{name: aws-masker-restore}")), env=ENV)
    other.request("POST", "/e", "x", {"Accept-Encoding": "gzip, br"})
    assert other.upstream.requests[-1].headers["Accept-Encoding"] == "gzip, br"  # nothing to restore
