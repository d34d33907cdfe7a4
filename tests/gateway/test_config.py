"""Settings from the environment, Kong's schema DSL and declarative kong.yml loading."""

from __future__ import annotations

import pytest

from aws_masker_gateway.declarative import DeclarativeError, parse_declarative, schema_validator
from aws_masker_gateway.lua import LuaEngine
from aws_masker_gateway.pluginserver import PluginInfoError, parse_plugin_info
from aws_masker_gateway.schema import SchemaViolation, validate_config
from aws_masker_gateway.serverless import make_validator
from aws_masker_gateway.settings import (
    PluginServerDef,
    SettingsError,
    load_settings,
    parse_nginx_size,
)

# -- settings -----------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "size"), [("8k", 8192), ("10m", 10 * 1024**2), ("512", 512), ("1G", 1024**3)]
)
def test_nginx_sizes(text: str, size: int) -> None:
    assert parse_nginx_size(text) == size


def test_bad_nginx_size() -> None:
    with pytest.raises(SettingsError):
        parse_nginx_size("8kb")


def test_defaults_without_pluginserver_names() -> None:
    settings = load_settings(env={}, prefix="/tmp/kp")
    assert settings.plugins == ("bundled", "aws-masker", "aws-masker-restore", "aws-masker-collect")
    assert settings.client_body_buffer_size == 8192
    (server,) = settings.plugin_servers
    assert server.name == "aws-masker"
    assert server.socket == "/tmp/kp/aws-masker.sock"
    assert server.start_cmd is not None and server.start_cmd.endswith(
        "aws-masker-server --kong-prefix /tmp/kp"
    )
    assert server.query_cmd.endswith("aws-masker-server --dump")


def test_named_servers_follow_kong_keys() -> None:
    env = {
        "KONG_PREFIX": "/tmp/kp2",
        "KONG_PLUGINS": "bundled,aws-masker",
        "KONG_PLUGINSERVER_NAMES": "AWS-Masker",
        "KONG_PLUGINSERVER_AWS_MASKER_START_CMD": "/opt/p.py --kong-prefix /tmp/kp2",
        "KONG_PLUGINSERVER_AWS_MASKER_QUERY_CMD": "/opt/p.py --dump",
        "KONG_NGINX_HTTP_CLIENT_BODY_BUFFER_SIZE": "10m",
    }
    settings = load_settings(env=env)
    assert settings.plugin_servers == (
        PluginServerDef(
            "aws-masker", "/tmp/kp2/aws-masker.socket", "/opt/p.py --kong-prefix /tmp/kp2", "/opt/p.py --dump"
        ),
    )
    assert settings.client_body_buffer_size == 10 * 1024**2


def test_missing_query_cmd_aborts_like_kong_3_9() -> None:
    with pytest.raises(SettingsError, match="query_command undefined for pluginserver x"):
        load_settings(env={"KONG_PLUGINSERVER_NAMES": "x", "KONG_PLUGINSERVER_X_START_CMD": "/bin/true"})


def test_bundled_enables_serverless_only() -> None:
    settings = load_settings(env={"KONG_PLUGINS": "bundled"})
    assert settings.plugin_enabled("post-function")
    assert not settings.plugin_enabled("aws-masker")


# -- schema -------------------------------------------------------------------------------------------
LUA = LuaEngine(lambda: 0.0)  # match/not_match patterns are tested by LuaJIT

FIELDS = [
    {"enabled": {"type": "boolean", "default": True}},
    {"ratio": {"type": "number", "between": [0, 1], "default": 0.5}},
    {"mode": {"type": "string", "one_of": ["a", "b"], "default": "a"}},
    {"name": {"type": "string"}},
    {"count": {"type": "integer", "gt": 0}},
    {"tags": {"type": "array", "elements": {"type": "string"}, "len_min": 1}},
    {"ids": {"type": "set", "elements": {"type": "integer"}}},
    {"labels": {"type": "map", "keys": {"type": "string"}, "values": {"type": "string"}}},
    {"redis": {"type": "record", "fields": [{"port": {"type": "integer", "default": 6379}}]}},
    {"key": {"type": "string", "required": True, "default": "k"}},
    {"ident": {"type": "string", "match": "^%a[%w_]*$", "len_max": 8}},
    {"short": {"type": "string", "len_max": 4}},
]


def violation(config: dict[str, object], fields: list[dict[str, object]] = FIELDS) -> str:
    with pytest.raises(SchemaViolation) as info:
        validate_config(fields, config, lua_find=LUA.lua_find)  # type: ignore[arg-type]
    return str(info.value)


def test_defaults_are_filled_and_unset_fields_are_null() -> None:
    result = validate_config(FIELDS, {"ids": [1, 1, 2]}, lua_find=LUA.lua_find)
    assert result["enabled"] is True and result["ratio"] == 0.5 and result["mode"] == "a"
    assert result["name"] is None and result["count"] is None
    assert result["redis"] == {"port": 6379}
    assert result["ids"] == [1, 2]


@pytest.mark.parametrize(
    ("config", "message"),
    [
        ({"enabled": "yes"}, "schema violation (config.enabled: expected a boolean)"),
        ({"ratio": 2}, "schema violation (config.ratio: value should be between 0 and 1)"),
        ({"mode": "c"}, "schema violation (config.mode: expected one of: a, b)"),
        ({"surprise": 1}, "schema violation (config.surprise: unknown field)"),
        ({"name": ""}, "schema violation (config.name: length must be at least 1)"),
        ({"count": 0}, "schema violation (config.count: value must be greater than 0)"),
        ({"count": 1.5}, "schema violation (config.count: expected an integer)"),
        ({"tags": []}, "schema violation (config.tags: length must be at least 1)"),
        ({"tags": ["a", 3]}, "schema violation (config.tags.2: expected a string)"),
        ({"labels": {"a": 1}}, "schema violation (config.labels.a: expected a string)"),
        ({"redis": {"port": "x"}}, "schema violation (config.redis.port: expected an integer)"),
        ({"redis": {"host": "x"}}, "schema violation (config.redis.host: unknown field)"),
        ({"ident": "9abc"}, "schema violation (config.ident: invalid value: 9abc)"),
        ({"ident": "abcdefghij"}, "schema violation (config.ident: length must be at most 8)"),
        ({"short": "ééé"}, "schema violation (config.short: length must be at most 4)"),  # bytes: #value
    ],
)
def test_errors_name_the_field_in_kong_wording(config: dict[str, object], message: str) -> None:
    assert violation(config) == message


def test_several_errors_are_listed() -> None:
    assert violation({"enabled": 1, "mode": "z"}) == (
        "2 schema violations (config.enabled: expected a boolean; config.mode: expected one of: a, b)"
    )


def test_required_field_missing() -> None:
    with pytest.raises(SchemaViolation, match=r"config\.x: required field missing"):
        validate_config([{"x": {"type": "string", "required": True}}], {}, lua_find=LUA.lua_find)


def test_lengths_count_bytes_like_lua() -> None:
    assert validate_config(FIELDS, {"short": "éé"}, lua_find=LUA.lua_find)["short"] == "éé"


PATTERN_FIELDS = [
    {"call": {"type": "string", "match": "^[%a_]+%b()$"}},  # %b: balanced parentheses
    {"env": {"type": "string", "match": "%f[%w]prod%f[%W]"}},  # %f: "prod" as a whole word
    {"pair": {"type": "string", "match": "^(%w+)=%1$"}},  # back-reference
    {"range": {"type": "string", "match": "^(%d+)-(%d+)$"}},  # '-' after ')' is a literal
    {"one": {"type": "string", "match": "^.$"}},  # '.' is one byte
    {"spaceless": {"type": "string", "not_match": "%s"}},
]


@pytest.mark.parametrize(
    ("field", "value", "ok"),
    [
        ("call", "f(a, (b))", True),
        ("call", "f(a, (b)", False),
        ("env", "eu-prod-1", True),
        ("env", "production", False),
        ("pair", "ab=ab", True),
        ("pair", "ab=ba", False),
        ("range", "10-20", True),
        ("one", "x", True),
        ("one", "é", False),
        ("spaceless", "a-b", True),
        ("spaceless", "a b", False),
    ],
)
def test_match_rules_are_lua_patterns(field: str, value: str, ok: bool) -> None:
    if ok:
        result = validate_config(PATTERN_FIELDS, {field: value}, lua_find=LUA.lua_find)  # type: ignore[arg-type]
        assert result[field] == value
    else:
        message = violation({field: value}, PATTERN_FIELDS)
        assert message == f"schema violation (config.{field}: invalid value: {value})"


def test_malformed_pattern_is_a_field_error() -> None:
    """Kong 3.9 raises the Lua error out of ``validators.match``; here it names the field."""
    fields = [{"id": {"type": "string", "match": "^id:%"}}]
    message = violation({"id": "id:1"}, fields)
    assert message == "schema violation (config.id: malformed pattern (ends with '%'))"
    # as in Lua, a pattern is only read as far as matching goes: "x" fails at its first item
    assert violation({"id": "x"}, fields) == "schema violation (config.id: invalid value: x)"


def test_declarative_pattern_errors() -> None:
    fields = [{"name": {"type": "string", "match": "^[%w-]+$"}}, {"tag": {"type": "string", "match": "(%a"}}]
    settings = load_settings(env={"KONG_PLUGINS": "bundled,echo"}, prefix="/tmp/kp")
    text = '_format_version: "3.0"\nplugins:\n  - name: echo\n    config: {name: "%s"}\n'
    for validator in (schema_validator(fields, LUA.lua_find),):
        config = parse_declarative(text % "a-b", settings, {"echo": validator})
        assert config.plugins[0].config == {"name": "a-b", "tag": None}
        with pytest.raises(DeclarativeError, match=r"config\.name: invalid value: a_b"):
            parse_declarative(text % "a_b", settings, {"echo": validator})
    bad = text.replace("}", ', tag: "x"}') % "a"
    with pytest.raises(DeclarativeError) as info:
        parse_declarative(bad, settings, {"echo": schema_validator(fields, LUA.lua_find)})
    assert str(info.value) == (
        "failed parsing declarative configuration: in top level > 'plugins' entry 1 ('echo'): "
        "schema violation (config.tag: unfinished capture)"
    )


# -- plugin info (query_cmd output) ---------------------------------------------------------------------
SERVER = PluginServerDef("echo", "/tmp/x.sock", "start", "query")


def info_json(**over: object) -> str:
    import json

    info = {
        "Name": "echo",
        "Phases": ["access", "response", "log"],
        "Priority": 800,
        "Version": "0.1.0",
        "Schema": {"name": "echo", "fields": [{"config": {"type": "record", "fields": []}}]},
    }
    info.update(over)
    return json.dumps([info, {"Name": "ignored-second-plugin"}])


def test_plugin_info_uses_first_element() -> None:
    info = parse_plugin_info(SERVER, info_json())
    assert (info.name, info.priority, info.version, info.phases) == (
        "echo",
        800,
        "0.1.0",
        ("access", "response", "log"),
    )


@pytest.mark.parametrize(
    ("over", "message"),
    [
        ({"Priority": "high"}, "PRIORITY field is not a valid integer number"),
        ({"Version": "1.2.3.4"}, 'VERSION field does not follow the "x.y.z" format'),
        ({"Version": None}, 'VERSION field does not follow the "x.y.z" format'),
        ({"Phases": ["access", "teleport"]}, "unknown phases"),
        ({"Schema": {"fields": [{"config": {"type": "map"}}]}}, "fields[0].config of type record"),
    ],
)
def test_plugin_info_validation(over: dict[str, object], message: str) -> None:
    with pytest.raises(PluginInfoError) as info:
        parse_plugin_info(SERVER, info_json(**over))
    assert message in str(info.value)


def test_plugin_info_rejects_stdout_pollution() -> None:
    with pytest.raises(PluginInfoError, match="failed decoding plugin info"):
        parse_plugin_info(SERVER, "WARN - error loading plugin\n" + info_json())


# -- declarative ----------------------------------------------------------------------------------------
ECHO_FIELDS = [{"mode": {"type": "string", "one_of": ["a", "b"], "default": "a"}}]


def load(text: str, plugins: str = "bundled,echo") -> object:
    settings = load_settings(env={"KONG_PLUGINS": plugins}, prefix="/tmp/kp")
    validators = {"echo": schema_validator(ECHO_FIELDS, LUA.lua_find)}
    validators["post-function"] = make_validator("post-function", LuaEngine(lambda: 0.0))
    return parse_declarative(text, settings, validators)


GOOD = """
_format_version: "3.0"
services:
  - name: claude-api-service
    url: https://api.anthropic.com/v1/messages
    retries: 3
    connect_timeout: 5000
    routes:
      - name: claude-proxy
        paths: ["/claude-proxy/v1/messages"]
        methods: [POST]
        plugins:
          - name: echo
            config: {mode: b}
plugins:
  - name: post-function
    route: claude-proxy
    config:
      access: ["kong.log.notice('hi')"]
"""


def test_good_file_loads_with_defaults_and_stable_ids() -> None:
    first, second = load(GOOD), load(GOOD)
    (service,) = first.services  # type: ignore[attr-defined]
    assert (service.protocol, service.host, service.port, service.path) == (
        "https",
        "api.anthropic.com",
        443,
        "/v1/messages",
    )
    assert (service.connect_timeout, service.read_timeout, service.retries) == (5000, 60000, 3)
    (route,) = first.routes  # type: ignore[attr-defined]
    assert route.strip_path is True and route.preserve_host is False and route.methods == ("POST",)
    echo, post = first.plugins  # type: ignore[attr-defined]
    assert echo.config == {"mode": "b"} and echo.route_id == route.id
    assert post.route_id == route.id and post.config["access"] == ["kong.log.notice('hi')"]
    assert [p.id for p in first.plugins] == [p.id for p in second.plugins]  # type: ignore[attr-defined]


@pytest.mark.parametrize(
    ("mutate", "message"),
    [
        (
            lambda t: t.replace("mode: b", "mode: z"),
            "'routes' entry 1 ('claude-proxy') > 'plugins' entry 1 ('echo'): "
            "schema violation (config.mode: expected one of: a, b)",
        ),
        (lambda t: t.replace('"3.0"', '"4.0"'), "_format_version: expected one of: 1.1, 2.1, 3.0"),
        (
            lambda t: t.replace("retries: 3", "retries: many"),
            "'services' entry 1 ('claude-api-service'): schema violation (retries: expected an integer)",
        ),
        (lambda t: t.replace("route: claude-proxy", "route: nope"), "could not find route 'nope'"),
        (
            lambda t: t.replace("kong.log.notice('hi')", "kong.log.notice("),
            "schema violation (config.access.1: error parsing post-function:",
        ),
        (
            lambda t: t.replace("strip_path", "x").replace(
                "methods: [POST]", "methods: [POST]\n        bogus: 1"
            ),
            "schema violation (bogus: unknown field)",
        ),
    ],
)
def test_bad_files_name_entity_and_field(mutate: object, message: str) -> None:
    with pytest.raises(DeclarativeError) as info:
        load(mutate(GOOD))  # type: ignore[operator]
    assert str(info.value).startswith("failed parsing declarative configuration: ")
    assert message in str(info.value)


def test_plugin_not_enabled_in_kong_plugins() -> None:
    with pytest.raises(
        DeclarativeError, match="plugin 'echo' not enabled; add it to the 'plugins' configuration"
    ):
        load(GOOD, plugins="bundled")


def test_serverless_needs_at_least_one_phase() -> None:
    text = '_format_version: "3.0"\nplugins:\n  - name: post-function\n    config: {}\n'
    with pytest.raises(DeclarativeError, match="at least one of these fields must be non-empty"):
        load(text)


def test_top_level_routes_reference_services() -> None:
    """Both formats of plugin placement (nested and top-level with references) are accepted."""
    text = GOOD + "routes:\n  - name: extra\n    service: claude-api-service\n    paths: ['/x']\n"
    config = load(text)
    assert [r.name for r in config.routes] == ["claude-proxy", "extra"]  # type: ignore[attr-defined]
