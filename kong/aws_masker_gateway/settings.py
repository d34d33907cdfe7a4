"""Kong configuration keys that the gateway honours, read from the environment the way Kong does."""

from __future__ import annotations

import os
import re
import shutil
import sys
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

DEFAULT_PREFIX = "/usr/local/kong"
DEFAULT_PLUGINS = "bundled,aws-masker,aws-masker-restore,aws-masker-collect"
DEFAULT_BODY_BUFFER = "8k"
DEFAULT_SERVER_NAME = "aws-masker"
DEFAULT_SERVER_EXECUTABLE = "aws-masker-server"
# Kong 3.9 conf_loader: DEFAULT_PLUGINSERVER_PATH
DEFAULT_PLUGINSERVER_PATH = "/usr/local/bin"

BUNDLED_PLUGINS = frozenset({"pre-function", "post-function"})

_SIZE_RE = re.compile(r"^\s*(\d+)\s*([kKmMgG]?)\s*$")
_SIZE_UNITS = {"": 1, "k": 1024, "m": 1024**2, "g": 1024**3}


class SettingsError(ValueError):
    """A Kong configuration key has an invalid value."""


def parse_nginx_size(value: str) -> int:
    """Parse an nginx size such as ``8k``, ``10m`` or ``512`` into bytes."""
    match = _SIZE_RE.match(value)
    if not match:
        raise SettingsError(f"invalid nginx size: {value!r}")
    number, unit = match.groups()
    return int(number) * _SIZE_UNITS[unit.lower()]


@dataclass(frozen=True)
class PluginServerDef:
    """One ``pluginserver_<name>_*`` block."""

    name: str
    socket: str
    start_cmd: str | None
    query_cmd: str


@dataclass(frozen=True)
class GatewaySettings:
    prefix: str
    plugins: tuple[str, ...]
    plugin_servers: tuple[PluginServerDef, ...]
    client_body_buffer_size: int
    lua_package_path: str | None = None
    """``lua_package_path``: where Lua plugins are found (Kong's default: ``./?.lua;./?/init.lua;``)."""
    lua_package_cpath: str | None = None

    def plugin_enabled(self, name: str) -> bool:
        """``plugins`` semantics: ``bundled`` enables the bundled plugins, ``off`` disables all."""
        if "off" in self.plugins:
            return False
        if name in self.plugins:
            return True
        return "bundled" in self.plugins and name in BUNDLED_PLUGINS


def _conf(env: Mapping[str, str], key: str) -> str | None:
    """``KONG_<KEY>`` lookup; Kong lower-cases env names into conf keys, so match case-insensitively."""
    wanted = "kong_" + key.lower()
    for env_key, value in env.items():
        if env_key.lower() == wanted:
            value = value.strip()
            return value or None
    return None


def _split_list(value: str) -> tuple[str, ...]:
    return tuple(item.strip() for item in value.split(",") if item.strip())


def default_server_executable() -> str:
    """``aws-masker-server`` next to the running interpreter (a venv), else from PATH, else bare."""
    sibling = Path(sys.executable).with_name(DEFAULT_SERVER_EXECUTABLE)
    if sibling.exists():
        return str(sibling)
    return shutil.which(DEFAULT_SERVER_EXECUTABLE) or DEFAULT_SERVER_EXECUTABLE


def _server_defs(env: Mapping[str, str], prefix: str) -> tuple[PluginServerDef, ...]:
    names_value = _conf(env, "pluginserver_names")
    if names_value is None:
        exe = default_server_executable()
        return (
            PluginServerDef(
                name=DEFAULT_SERVER_NAME,
                socket=_conf(env, "pluginserver_aws_masker_socket") or f"{prefix}/{DEFAULT_SERVER_NAME}.sock",
                start_cmd=_conf(env, "pluginserver_aws_masker_start_cmd") or f"{exe} --kong-prefix {prefix}",
                query_cmd=_conf(env, "pluginserver_aws_masker_query_cmd") or f"{exe} --dump",
            ),
        )
    defs: list[PluginServerDef] = []
    for raw_name in _split_list(names_value):
        name = raw_name.lower()
        key = "pluginserver_" + name.replace("-", "_")
        default_path = Path(DEFAULT_PLUGINSERVER_PATH) / name
        has_default = default_path.exists()
        start_cmd = _conf(env, key + "_start_cmd") or (str(default_path) if has_default else None)
        query_cmd = _conf(env, key + "_query_cmd") or (f"{default_path} -dump" if has_default else None)
        if query_cmd is None:
            raise SettingsError(f"query_command undefined for pluginserver {name}")
        socket = _conf(env, key + "_socket") or f"{prefix}/{name}.socket"
        defs.append(PluginServerDef(name=name, socket=socket, start_cmd=start_cmd, query_cmd=query_cmd))
    return tuple(defs)


def load_settings(env: Mapping[str, str] | None = None, prefix: str | None = None) -> GatewaySettings:
    """Read Kong's settings from ``env`` (default ``os.environ``); ``prefix`` overrides ``KONG_PREFIX``."""
    env = os.environ if env is None else env
    resolved_prefix = (prefix or _conf(env, "prefix") or DEFAULT_PREFIX).rstrip("/") or "/"
    plugins = _split_list(_conf(env, "plugins") or DEFAULT_PLUGINS)
    buffer_size = parse_nginx_size(_conf(env, "nginx_http_client_body_buffer_size") or DEFAULT_BODY_BUFFER)
    return GatewaySettings(
        prefix=resolved_prefix,
        plugins=plugins,
        plugin_servers=_server_defs(env, resolved_prefix),
        client_body_buffer_size=buffer_size,
        lua_package_path=_conf(env, "lua_package_path"),
        lua_package_cpath=_conf(env, "lua_package_cpath"),
    )
