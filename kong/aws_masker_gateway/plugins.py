"""The plugins iterator: which configured plugins run for a request, in which order, with which config."""

from __future__ import annotations

import itertools
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from .declarative import DEFAULT_WS_ID, DeclarativeConfig, PluginEntity
from .instances import InstanceCache
from .lua import LuaChunk, LuaEngine, LuaPlugin
from .pluginserver import ExternalPluginInfo
from .router import RouteMatch
from .rpc import RpcClient
from .serverless import PRIORITIES, RUNNABLE_PHASES, compile_phases


@dataclass
class ExternalPluginRuntime:
    """Kong's per-plugin objects for an external plugin: its ``Rpc`` and its instance cache."""

    info: ExternalPluginInfo
    rpc: RpcClient
    instances: InstanceCache


@dataclass(frozen=True)
class ConfiguredPlugin:
    entity: PluginEntity
    priority: int
    phases: frozenset[str]
    seq: int
    kong_config: dict[str, Any] = field(default_factory=dict)
    external: ExternalPluginRuntime | None = None
    lua_plugin: LuaPlugin | None = None
    """A Lua plugin from the Lua path (``kong.plugins.<name>.handler``)."""
    lua_chunks: Mapping[str, list[LuaChunk]] = field(default_factory=dict)
    """The compiled functions of ``pre-function``/``post-function``, per phase."""

    @property
    def is_lua(self) -> bool:
        return self.external is None

    @property
    def name(self) -> str:
        return self.entity.name

    @property
    def is_global(self) -> bool:
        return self.entity.route_id is None and self.entity.service_id is None


def kong_config(entity: PluginEntity, seq: int) -> dict[str, Any]:
    """``get_plugin_config``: the config plus Kong's internal keys (nil ones are left out, as cjson does)."""
    cfg = dict(entity.config)
    for key, value in (
        ("route_id", entity.route_id),
        ("service_id", entity.service_id),
        ("plugin_instance_name", entity.instance_name),
    ):
        if value is not None:
            cfg[key] = value
    cfg["__plugin_id"] = entity.id
    cfg["__ws_id"] = DEFAULT_WS_ID
    # kong.db.plugins:cache_key(name, route_id, service_id, consumer_id, nil, ws_id)
    parts = ("plugins", entity.name, entity.route_id or "", entity.service_id or "", "", "", DEFAULT_WS_ID)
    cfg["__key__"] = ":".join(parts)
    cfg["__seq__"] = seq
    return cfg


class PluginSet:
    """All enabled plugins of one configuration version."""

    def __init__(self, plugins: Iterable[ConfiguredPlugin]) -> None:
        self.plugins = tuple(plugins)

    def for_request(self, match: RouteMatch | None) -> list[ConfiguredPlugin]:
        """One config per plugin name (route+service > route > service > global), by priority."""
        route_id = match.route.id if match else None
        service_id = match.service.id if match and match.service else None
        chosen: dict[str, tuple[int, ConfiguredPlugin]] = {}
        for plugin in self.plugins:
            e = plugin.entity
            if e.route_id is not None and e.route_id != route_id:
                continue
            if e.service_id is not None and e.service_id != service_id:
                continue
            specificity = (2 if e.route_id else 0) + (1 if e.service_id else 0)
            current = chosen.get(plugin.name)
            if current is None or specificity > current[0]:
                chosen[plugin.name] = (specificity, plugin)
        return sorted((p for _, p in chosen.values()), key=lambda p: -p.priority)

    def global_plugins(self) -> list[ConfiguredPlugin]:
        return self.for_request(None)

    def names(self) -> list[str]:
        return sorted({p.name for p in self.plugins})


def build_plugin_set(
    config: DeclarativeConfig,
    externals: Mapping[str, ExternalPluginRuntime],
    lua_plugins: Mapping[str, LuaPlugin],
    engine: LuaEngine,
    seq_counter: itertools.count[int],
) -> PluginSet:
    plugins: list[ConfiguredPlugin] = []
    for entity in config.plugins:
        if not entity.enabled:
            continue
        seq = next(seq_counter)
        external = externals.get(entity.name)
        lua_plugin = lua_plugins.get(entity.name)
        if lua_plugin is not None:  # Kong looks for a Lua module first (load_plugin_handler)
            plugins.append(
                ConfiguredPlugin(
                    entity=entity,
                    priority=lua_plugin.priority,
                    phases=lua_plugin.phases,
                    seq=seq,
                    lua_plugin=lua_plugin,
                )
            )
        elif external is not None:
            plugins.append(
                ConfiguredPlugin(
                    entity=entity,
                    priority=external.info.priority,
                    phases=frozenset(external.info.phases),
                    seq=seq,
                    kong_config=kong_config(entity, seq),
                    external=external,
                )
            )
        else:
            chunks = compile_phases(entity.name, entity.config, engine)
            plugins.append(
                ConfiguredPlugin(
                    entity=entity,
                    priority=PRIORITIES[entity.name],
                    phases=frozenset(chunks) & RUNNABLE_PHASES,
                    seq=seq,
                    lua_chunks=chunks,
                )
            )
    return PluginSet(plugins)
