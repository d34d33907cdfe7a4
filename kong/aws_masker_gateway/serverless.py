"""The bundled ``pre-function`` and ``post-function`` plugins (Kong 3.x serverless functions)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from .lua import LuaChunk, LuaEngine
from .schema import FieldError, SchemaViolation, validate_config

PRIORITIES = {"pre-function": 1_000_000, "post-function": -1000}
PHASES = ("certificate", "rewrite", "access", "header_filter", "body_filter", "log")
RUNNABLE_PHASES = frozenset({"rewrite", "access", "header_filter", "body_filter", "log"})

CONFIG_FIELDS: list[Mapping[str, Any]] = [
    {
        phase: {
            "type": "array",
            "required": True,
            "default": [],
            "elements": {"type": "string", "required": False},
        }
    }
    for phase in PHASES
]


def make_validator(plugin_name: str, engine: LuaEngine) -> Any:
    """Schema + ``at_least_one_of`` entity check + Lua syntax check (``validate_function``)."""

    def validate(config: Any) -> dict[str, Any]:
        result = validate_config(CONFIG_FIELDS, config, lua_find=engine.lua_find)
        if not any(result[phase] for phase in PHASES):
            fields = ", ".join(f"'config.{p}'" for p in PHASES)
            raise SchemaViolation(
                [FieldError("@entity", f"at least one of these fields must be non-empty: {fields}")]
            )
        errors = []
        for phase in PHASES:
            for i, source in enumerate(result[phase], 1):
                try:
                    engine.compile(source, f"{plugin_name}:{phase}:{i}")
                except SyntaxError as exc:
                    errors.append(FieldError(f"config.{phase}.{i}", f"error parsing {plugin_name}: {exc}"))
        if errors:
            raise SchemaViolation(errors)
        return result

    return validate


def compile_phases(
    plugin_name: str, config: Mapping[str, Any], engine: LuaEngine
) -> dict[str, list[LuaChunk]]:
    """Compile every phase array into sandboxed chunks (one fresh sandbox per function, like Kong)."""
    return {
        phase: [engine.compile(src, f"{plugin_name}:{phase}:{i}") for i, src in enumerate(config[phase], 1)]
        for phase in PHASES
        if config.get(phase)
    }
