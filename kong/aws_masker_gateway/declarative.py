"""DB-less ``kong.yml`` loading: services, routes and plugins as typed entities.

Plugins may be nested under a service or route, or be top-level with ``service:``/``route:``
references. Entities without an ``id`` get a stable UUID (uuid5 of their kind, scope and position
or name). Plugin configs are validated (and filled with defaults) by the validator registered for
the plugin's name; a plugin not enabled by ``KONG_PLUGINS`` is rejected with Kong's message.
Errors name the entity path and field, e.g.
``in 'services' entry 1 ('api') > 'routes' entry 1 ('proxy') > 'plugins' entry 1 ('aws-masker'):
schema violation (config.mode: expected one of: a, b)``.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import yaml

from .schema import LuaFind, SchemaViolation, validate_config
from .settings import GatewaySettings

FORMAT_VERSIONS = ("1.1", "2.1", "3.0")
ID_NAMESPACE = uuid.UUID("6b7f3c1e-4a57-5f0a-9d3c-6b6173a6d001")
DEFAULT_WS_ID = str(uuid.uuid5(ID_NAMESPACE, "workspace:default"))
HTTP_METHODS = ("GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS", "TRACE", "CONNECT")
MAX_TIMEOUT = 2**31 - 2

ConfigValidator = Callable[[Any], dict[str, Any]]


class DeclarativeError(ValueError):
    """The declarative configuration is invalid; the message names the entity and field."""


@dataclass(frozen=True)
class Service:
    id: str
    name: str | None
    protocol: str
    host: str
    port: int
    path: str | None
    connect_timeout: int = 60000
    write_timeout: int = 60000
    read_timeout: int = 60000
    retries: int = 5


@dataclass(frozen=True)
class Route:
    id: str
    name: str | None
    service_id: str | None
    paths: tuple[str, ...] = ()
    methods: tuple[str, ...] = ()
    hosts: tuple[str, ...] = ()
    protocols: tuple[str, ...] = ("http", "https")
    strip_path: bool = True
    preserve_host: bool = False
    regex_priority: int = 0
    request_buffering: bool = True
    response_buffering: bool = True


@dataclass(frozen=True)
class PluginEntity:
    id: str
    name: str
    config: dict[str, Any]
    enabled: bool = True
    route_id: str | None = None
    service_id: str | None = None
    instance_name: str | None = None


@dataclass(frozen=True)
class DeclarativeConfig:
    services: tuple[Service, ...] = ()
    routes: tuple[Route, ...] = ()
    plugins: tuple[PluginEntity, ...] = ()
    services_by_id: Mapping[str, Service] = field(default_factory=dict)

    def service_for(self, route: Route) -> Service | None:
        return self.services_by_id.get(route.service_id) if route.service_id else None


def _stable_id(*parts: object) -> str:
    return str(uuid.uuid5(ID_NAMESPACE, ":".join(str(p) for p in parts)))


def _label(kind: str, index: int, entity: Any) -> str:
    name = entity.get("name") if isinstance(entity, dict) else None
    return f"'{kind}' entry {index}" + (f" ('{name}')" if name else "")


class _Loader:
    def __init__(self, settings: GatewaySettings, validators: Mapping[str, ConfigValidator]) -> None:
        self.settings = settings
        self.validators = validators
        self.services: list[Service] = []
        self.routes: list[Route] = []
        self.plugins: list[PluginEntity] = []
        self.raw_plugins: list[tuple[str, int, dict[str, Any], str | None, str | None]] = []

    # -- helpers ---------------------------------------------------------------------------------
    @staticmethod
    def fail(where: str, message: str) -> DeclarativeError:
        return DeclarativeError(f"in {where}: {message}")

    def check_keys(self, where: str, entity: dict[str, Any], allowed: set[str]) -> None:
        unknown = sorted(set(entity) - allowed)
        if unknown:
            raise self.fail(where, f"schema violation ({unknown[0]}: unknown field)")

    def integer(self, where: str, entity: dict[str, Any], key: str, default: int, low: int, high: int) -> int:
        value = entity.get(key, default)
        if value is None:
            value = default
        if isinstance(value, bool) or not isinstance(value, int):
            raise self.fail(where, f"schema violation ({key}: expected an integer)")
        if not low <= value <= high:
            raise self.fail(where, f"schema violation ({key}: value should be between {low} and {high})")
        return value

    def boolean(self, where: str, entity: dict[str, Any], key: str, default: bool) -> bool:
        value = entity.get(key, default)
        if value is None:
            return default
        if not isinstance(value, bool):
            raise self.fail(where, f"schema violation ({key}: expected a boolean)")
        return value

    def strings(self, where: str, entity: dict[str, Any], key: str) -> tuple[str, ...]:
        value = entity.get(key) or []
        if not isinstance(value, list) or not all(isinstance(v, str) and v for v in value):
            raise self.fail(where, f"schema violation ({key}: expected an array of non-empty strings)")
        return tuple(value)

    # -- services --------------------------------------------------------------------------------
    def service(self, where: str, index: int, raw: Any) -> Service:
        if not isinstance(raw, dict):
            raise self.fail(where, "expected a record")
        self.check_keys(
            where,
            raw,
            {
                "id",
                "name",
                "url",
                "protocol",
                "host",
                "port",
                "path",
                "connect_timeout",
                "write_timeout",
                "read_timeout",
                "retries",
                "routes",
                "plugins",
                "tags",
                "enabled",
            },
        )
        fields = dict(raw)
        url = fields.pop("url", None)
        if url is not None:
            parts = urlsplit(str(url))
            if not parts.scheme or not parts.hostname:
                raise self.fail(where, f"schema violation (url: missing host in url: {url})")
            fields.setdefault("protocol", parts.scheme)
            fields.setdefault("host", parts.hostname)
            if parts.port is not None:
                fields.setdefault("port", parts.port)
            if parts.path:
                fields.setdefault("path", parts.path)
        protocol = fields.get("protocol") or "http"
        if protocol not in ("http", "https"):
            raise self.fail(where, "schema violation (protocol: expected one of: http, https)")
        host = fields.get("host")
        if not isinstance(host, str) or not host:
            raise self.fail(where, "schema violation (host: required field missing)")
        port = self.integer(where, fields, "port", 443 if protocol == "https" else 80, 0, 65535)
        path = fields.get("path")
        if path is not None and (not isinstance(path, str) or not path.startswith("/")):
            raise self.fail(where, "schema violation (path: should start with: /)")
        name = fields.get("name")
        service = Service(
            id=str(fields.get("id") or _stable_id("service", name or index)),
            name=name,
            protocol=protocol,
            host=host,
            port=port,
            path=path,
            connect_timeout=self.integer(where, fields, "connect_timeout", 60000, 1, MAX_TIMEOUT),
            write_timeout=self.integer(where, fields, "write_timeout", 60000, 1, MAX_TIMEOUT),
            read_timeout=self.integer(where, fields, "read_timeout", 60000, 1, MAX_TIMEOUT),
            retries=self.integer(where, fields, "retries", 5, 0, 32767),
        )
        self.services.append(service)
        return service

    # -- routes ----------------------------------------------------------------------------------
    def route(self, where: str, index: int, raw: Any, service_id: str | None) -> Route:
        if not isinstance(raw, dict):
            raise self.fail(where, "expected a record")
        self.check_keys(
            where,
            raw,
            {
                "id",
                "name",
                "paths",
                "methods",
                "hosts",
                "protocols",
                "strip_path",
                "preserve_host",
                "regex_priority",
                "request_buffering",
                "response_buffering",
                "path_handling",
                "https_redirect_status_code",
                "plugins",
                "tags",
                "service",
            },
        )
        paths = self.strings(where, raw, "paths")
        for p in paths:
            if not (p.startswith("/") or p.startswith("~")):
                raise self.fail(
                    where, "schema violation (paths: should start with: / (fixed path) or ~/ (regex path))"
                )
        methods = tuple(m.upper() for m in self.strings(where, raw, "methods"))
        for m in methods:
            if m not in HTTP_METHODS:
                raise self.fail(where, f"schema violation (methods: invalid value: {m})")
        hosts = tuple(h.lower() for h in self.strings(where, raw, "hosts"))
        protocols = self.strings(where, raw, "protocols") or ("http", "https")
        if any(p not in ("http", "https") for p in protocols):
            raise self.fail(where, "schema violation (protocols: expected one of: http, https)")
        if raw.get("path_handling", "v0") != "v0":
            raise self.fail(where, "schema violation (path_handling: only v0 is supported by this gateway)")
        if not (paths or methods or hosts):
            raise self.fail(
                where,
                "schema violation (must set one of 'methods', 'hosts', 'headers', 'paths' "
                "when 'protocols' is 'http')",
            )
        name = raw.get("name")
        route = Route(
            id=str(raw.get("id") or _stable_id("route", name or index)),
            name=name,
            service_id=service_id,
            paths=paths,
            methods=methods,
            hosts=hosts,
            protocols=tuple(protocols),
            strip_path=self.boolean(where, raw, "strip_path", True),
            preserve_host=self.boolean(where, raw, "preserve_host", False),
            regex_priority=self.integer(where, raw, "regex_priority", 0, -(2**31), 2**31 - 1),
            request_buffering=self.boolean(where, raw, "request_buffering", True),
            response_buffering=self.boolean(where, raw, "response_buffering", True),
        )
        self.routes.append(route)
        return route

    # -- plugins ---------------------------------------------------------------------------------
    def collect_plugins(self, where: str, raw: Any, route_id: str | None, service_id: str | None) -> None:
        if raw is None:
            return
        if not isinstance(raw, list):
            raise self.fail(where, "schema violation (plugins: expected an array)")
        for i, entry in enumerate(raw, 1):
            label = f"{where} > {_label('plugins', i, entry)}"
            self.raw_plugins.append((label, i, entry, route_id, service_id))

    def plugin(self, where: str, index: int, raw: Any, route_id: str | None, service_id: str | None) -> None:
        if not isinstance(raw, dict):
            raise self.fail(where, "expected a record")
        allowed = {
            "id",
            "name",
            "config",
            "enabled",
            "protocols",
            "instance_name",
            "tags",
            "route",
            "service",
        }
        self.check_keys(where, raw, allowed)
        name = raw.get("name")
        if not isinstance(name, str) or not name:
            raise self.fail(where, "schema violation (name: required field missing)")
        if not self.settings.plugin_enabled(name):
            raise self.fail(
                where,
                f"schema violation (name: plugin '{name}' not enabled; "
                "add it to the 'plugins' configuration property)",
            )
        validator = self.validators.get(name)
        if validator is None:
            raise self.fail(where, f"{name} plugin is enabled but not installed")
        try:
            config = validator(raw.get("config"))
        except SchemaViolation as exc:
            raise self.fail(where, str(exc)) from None
        if "route" in raw or "service" in raw:
            if raw.get("route"):
                route_id = self.resolve(where, "route", raw["route"], self.routes)
            if raw.get("service"):
                service_id = self.resolve(where, "service", raw["service"], self.services)
        scope = f"route={route_id}" if route_id else f"service={service_id}" if service_id else "global"
        plugin = PluginEntity(
            id=str(raw.get("id") or _stable_id("plugin", scope, name, index)),
            name=name,
            config=config,
            enabled=self.boolean(where, raw, "enabled", True),
            route_id=route_id,
            service_id=service_id,
            instance_name=raw.get("instance_name"),
        )
        for other in self.plugins:
            if (other.name, other.route_id, other.service_id) == (name, route_id, service_id):
                raise self.fail(where, f"uniqueness violation: 'plugins' entity '{name}' on {scope}")
        self.plugins.append(plugin)

    def resolve(self, where: str, kind: str, ref: Any, entities: list[Any]) -> str:
        if isinstance(ref, dict):
            ref = ref.get("id") or ref.get("name")
        for entity in entities:
            if ref in (entity.id, entity.name):
                return str(entity.id)
        raise self.fail(where, f"schema violation ({kind}: could not find {kind} '{ref}')")

    # -- document --------------------------------------------------------------------------------
    def load(self, doc: Any) -> DeclarativeConfig:
        if not isinstance(doc, dict):
            raise DeclarativeError("expected an object at the top level")
        version = doc.get("_format_version")
        if version is None:
            raise DeclarativeError("schema violation (_format_version: required field missing)")
        if str(version) not in FORMAT_VERSIONS:
            raise DeclarativeError(
                f"schema violation (_format_version: expected one of: {', '.join(FORMAT_VERSIONS)})"
            )
        known = {"_format_version", "_transform", "_comment", "services", "routes", "plugins"}
        unknown = sorted(set(doc) - known)
        if unknown:
            raise DeclarativeError(f"schema violation ({unknown[0]}: unknown field or unsupported entity)")
        for i, raw in enumerate(doc.get("services") or [], 1):
            where = _label("services", i, raw)
            service = self.service(where, i, raw)
            self.collect_plugins(where, raw.get("plugins"), None, service.id)
            for j, raw_route in enumerate(raw.get("routes") or [], 1):
                rwhere = f"{where} > {_label('routes', j, raw_route)}"
                route = self.route(rwhere, j, raw_route, service.id)
                self.collect_plugins(rwhere, raw_route.get("plugins"), route.id, None)
        for i, raw in enumerate(doc.get("routes") or [], 1):
            where = _label("routes", i, raw)
            ref = raw.get("service") if isinstance(raw, dict) else None
            service_id = self.resolve(where, "service", ref, self.services) if ref else None
            route = self.route(where, i, raw, service_id)
            self.collect_plugins(where, raw.get("plugins"), route.id, None)
        self.collect_plugins("top level", doc.get("plugins"), None, None)
        self.check_unique_names()
        for where, index, raw, route_id, service_id in self.raw_plugins:
            self.plugin(where, index, raw, route_id, service_id)
        return DeclarativeConfig(
            services=tuple(self.services),
            routes=tuple(self.routes),
            plugins=tuple(self.plugins),
            services_by_id={s.id: s for s in self.services},
        )

    def check_unique_names(self) -> None:
        for kind, entities in (("services", self.services), ("routes", self.routes)):
            seen: set[str] = set()
            for entity in entities:
                if entity.name and entity.name in seen:
                    raise DeclarativeError(
                        f"uniqueness violation: '{kind}' entity with name set to '{entity.name}'"
                    )
                if entity.name:
                    seen.add(entity.name)


def parse_declarative(
    text: str, settings: GatewaySettings, validators: Mapping[str, ConfigValidator]
) -> DeclarativeConfig:
    """Parse and validate a declarative configuration document."""
    try:
        doc = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        raise DeclarativeError(f"failed parsing declarative configuration: {exc}") from None
    try:
        return _Loader(settings, validators).load(doc)
    except DeclarativeError as exc:
        raise DeclarativeError(f"failed parsing declarative configuration: {exc}") from None


def load_declarative(
    path: str | Path, settings: GatewaySettings, validators: Mapping[str, ConfigValidator]
) -> DeclarativeConfig:
    try:
        text = Path(path).read_text(encoding="utf-8")
    except OSError as exc:
        raise DeclarativeError(f"failed reading declarative configuration {path}: {exc.strerror}") from None
    return parse_declarative(text, settings, validators)


def schema_validator(config_fields: list[Mapping[str, Any]], lua_find: LuaFind) -> ConfigValidator:
    """A :data:`ConfigValidator` for a plugin whose ``config`` record has ``config_fields``; its
    ``match`` patterns are tested by ``lua_find`` (the gateway's ``LuaEngine.lua_find``)."""

    def validate(config: Any) -> dict[str, Any]:
        return validate_config(config_fields, config, lua_find=lua_find)

    return validate
