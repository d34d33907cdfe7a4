"""Kong's routing and ``path_handling = v0`` URL joining."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from aws_masker_gateway.declarative import parse_declarative
from aws_masker_gateway.router import Router, normalize_path, upstream_uri_v0
from aws_masker_gateway.settings import load_settings


def router(yml: str) -> Router:
    return Router(parse_declarative(yml, load_settings(env={}, prefix="/tmp/kp"), {}))


ORIGINAL = """
_format_version: "3.0"
services:
  - name: claude-api-service
    url: https://api.anthropic.com/v1/messages
    routes:
      - {name: analyze-claude, paths: ["/analyze-claude"], methods: [POST]}
      - {name: claude-proxy, paths: ["/claude-proxy/v1/messages"], methods: [POST]}
      - {name: anthropic-transparent, paths: ["/v1/messages"], hosts: [api.anthropic.com], strip_path: false,
         methods: [POST]}
"""


@pytest.mark.parametrize(
    ("path", "host", "route", "upstream"),
    [
        ("/claude-proxy/v1/messages", "localhost:8000", "claude-proxy", "/v1/messages"),
        ("/claude-proxy/v1/messages/", "localhost", "claude-proxy", "/v1/messages/"),
        ("/claude-proxy/v1/messages/count_tokens", "localhost", "claude-proxy", "/v1/messages/count_tokens"),
        ("/analyze-claude", "localhost", "analyze-claude", "/v1/messages"),
        # the original kong.yml's transparent route doubles the path (strip_path false + service path)
        ("/v1/messages", "api.anthropic.com", "anthropic-transparent", "/v1/messages/v1/messages"),
    ],
)
def test_original_deployment_routes(path: str, host: str, route: str, upstream: str) -> None:
    match = router(ORIGINAL).match("POST", path, host)
    assert match is not None
    assert (match.route.name, match.upstream_path) == (route, upstream)


def test_methods_and_hosts_filter() -> None:
    r = router(ORIGINAL)
    assert r.match("GET", "/claude-proxy/v1/messages", "localhost") is None
    assert r.match("POST", "/v1/messages", "example.com") is None
    assert r.match("POST", "/nothing", "localhost") is None


KONG_CASES = json.loads((Path(__file__).parent / "fixtures" / "router_path_handling_v0.json").read_text())[
    "tests"
]


@pytest.mark.parametrize(
    "case",
    KONG_CASES,
    ids=lambda c: f"{c['service_path']}|{c['route_path']}|{c['strip_path']}|{c['request_path']}",
)
def test_v0_url_joining_matches_kong_fixture(case: dict[str, object]) -> None:
    """Every ``v0`` row of Kong's own router path-handling fixture table."""
    route_path = case["route_path"]
    matcher = f'paths: ["{route_path}"]' if route_path else "hosts: [example.com]"
    yml = f"""
_format_version: "3.0"
services:
  - name: s
    url: http://upstream{case["service_path"]}
    routes: [{{name: r, {matcher}, strip_path: {str(case["strip_path"]).lower()}}}]
"""
    match = router(yml).match("GET", str(case["request_path"]), "example.com")
    assert match is not None and match.upstream_path == case["expected_path"]


def test_upstream_uri_function_direct_cases() -> None:
    assert upstream_uri_v0(True, "", "/foo", "/") == "/"
    assert upstream_uri_v0(True, "bar", "/foobar", "/base") == "/base/bar"
    assert upstream_uri_v0(False, "", "/", "/base/") == "/base/"


def test_longest_prefix_wins_and_regex_beats_prefix() -> None:
    r = router(
        """
_format_version: "3.0"
services:
  - name: s
    url: http://upstream
    routes:
      - {name: short, paths: ["/api"]}
      - {name: long, paths: ["/api/v1"]}
      - {name: rx, paths: ["~/api/v[0-9]+/items$"]}
      - {name: with-method, paths: ["/api"], methods: [DELETE]}
"""
    )
    assert r.match("GET", "/api/v1/x", "h").route.name == "long"  # type: ignore[union-attr]
    assert r.match("GET", "/api/v2", "h").route.name == "short"  # type: ignore[union-attr]
    assert r.match("GET", "/api/v1/items", "h").route.name == "rx"  # type: ignore[union-attr]
    assert r.match("DELETE", "/api/v1/x", "h").route.name == "with-method"  # type: ignore[union-attr]


def test_regex_strip_path_strips_the_whole_match() -> None:
    r = router(
        """
_format_version: "3.0"
services:
  - {name: s, url: "http://upstream/base", routes: [{name: rx, paths: ["~/v(?<ver>[0-9]+)/"]}]}
"""
    )
    match = r.match("GET", "/v2/users", "h")
    assert match is not None
    assert match.upstream_path == "/base/users" and match.captures == {"ver": "2"}


def test_wildcard_hosts() -> None:
    r = router(
        """
_format_version: "3.0"
services:
  - {name: s, url: "http://upstream", routes: [{name: w, hosts: ["*.example.com"]}]}
"""
    )
    assert r.match("GET", "/", "api.example.com:8000") is not None
    assert r.match("GET", "/", "example.org") is None


@pytest.mark.parametrize(
    ("raw", "normalized"),
    [("/a/./b/../c", "/a/c"), ("//a///b", "/a/b"), ("/%7Euser/%2F", "/~user/%2F"), ("/a%2db", "/a-b")],
)
def test_path_normalization(raw: str, normalized: str) -> None:
    assert normalize_path(raw) == normalized
