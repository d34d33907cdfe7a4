"""Validator for Kong's schema DSL (the subset plugin schemas use), with Kong's error wording.

Supported: types string/number/integer/boolean/array/set/map/record; ``default``, ``required``,
``one_of``, ``not_one_of``, ``eq``, ``gt``, ``between``, ``len_eq``, ``len_min``, ``len_max``,
``match``, ``not_match``, ``starts_with``, ``elements``, ``keys``/``values``, ``fields``.
Strings get Kong's implicit ``len_min = 1``. Missing records are built from their fields' defaults,
missing fields without a default become ``None`` (JSON ``null``), unknown fields are rejected.

``match`` and ``not_match`` take a Lua pattern, tested as Kong does (``value:match(pattern)``) by
LuaJIT itself through the ``lua_find`` the caller passes (:meth:`.lua.LuaEngine.lua_find`), so every
Lua pattern item works (``%b()``, ``%f[%w]``, captures, back-references) on the value's UTF-8 bytes.
A malformed pattern ("malformed pattern (ends with '%')") is reported as that field's error; Kong
3.9 does not catch it (``validators.match`` in kong/db/schema/init.lua calls ``value:match`` bare),
so there the Lua error escapes validation and the configuration is refused all the same.
``starts_with`` is a plain prefix test on Kong too and stays in Python.
"""

from __future__ import annotations

import copy
import logging
import math
import os
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from .logs import NOTICE

log = logging.getLogger(__name__)

FieldDef = Mapping[str, Any]

LuaFind = Callable[[str, str], bool]
"""``lua_find(value, pattern)``: whether the Lua pattern matches in ``value``; ``ValueError`` with
Lua's message for a malformed pattern."""


@dataclass(frozen=True)
class FieldError:
    path: str
    message: str


class SchemaViolation(ValueError):
    """Kong's ``schema violation (...)`` error, naming every offending field path."""

    def __init__(self, errors: list[FieldError]) -> None:
        self.errors = sorted(errors, key=lambda e: e.path)
        super().__init__(self._format())

    def _format(self) -> str:
        parts = [e.message if e.path == "@entity" else f"{e.path}: {e.message}" for e in self.errors]
        if len(parts) == 1:
            return f"schema violation ({parts[0]})"
        return f"{len(parts)} schema violations ({'; '.join(parts)})"


def _fmt_number(value: float) -> str:
    return str(int(value)) if float(value).is_integer() else repr(value)


def _length(value: Any) -> int:
    """Kong's ``#value``: a string's length in bytes."""
    return len(value.encode("utf-8")) if isinstance(value, str) else len(value)


class _Validator:
    def __init__(self, lua_find: LuaFind) -> None:
        self.errors: list[FieldError] = []
        self.lua_find = lua_find

    def fail(self, path: str, message: str) -> None:
        self.errors.append(FieldError(path, message))

    # -- records -------------------------------------------------------------------------------
    def record(self, fields: list[Mapping[str, FieldDef]], value: Any, path: str) -> Any:
        if not isinstance(value, Mapping):
            self.fail(path, "expected a record")
            return value
        declared: dict[str, FieldDef] = {}
        for entry in fields:
            ((name, fdef),) = entry.items()
            declared[name] = fdef
        for key in value:
            if key not in declared:
                self.fail(_join(path, str(key)), "unknown field")
        result: dict[str, Any] = {}
        for name, fdef in declared.items():
            result[name] = self.member(fdef, value.get(name), _join(path, name))
        return result

    def member(self, fdef: FieldDef, value: Any, path: str) -> Any:
        if value is None:
            value = self.default_for(fdef, path)
            if value is None:
                if fdef.get("required") is True:
                    self.fail(path, "required field missing")
                return None
        return self.field(fdef, value, path)

    def default_for(self, fdef: FieldDef, path: str) -> Any:
        if "default" in fdef and fdef["default"] is not None:
            return copy.deepcopy(fdef["default"])
        if fdef.get("type") == "record" and fdef.get("fields") is not None:
            return self.record(fdef["fields"], {}, path)
        return None

    # -- single field --------------------------------------------------------------------------
    def field(self, fdef: FieldDef, value: Any, path: str) -> Any:
        ftype = fdef.get("type")
        if ftype == "string" and fdef.get("referenceable") and isinstance(value, str) and is_reference(value):
            # Kong skips validation for a reference and resolves it when the config loads.
            return resolve_reference(value)
        checked = self.typed(ftype, fdef, value, path)
        if checked is _INVALID:
            return value
        message = self.validators(fdef, checked)
        if message:
            self.fail(path, message)
        return checked

    def typed(self, ftype: Any, fdef: FieldDef, value: Any, path: str) -> Any:
        if ftype == "string":
            return value if isinstance(value, str) else self._bad(path, "expected a string")
        if ftype == "boolean":
            return value if isinstance(value, bool) else self._bad(path, "expected a boolean")
        if ftype == "number":
            ok = isinstance(value, int | float) and not isinstance(value, bool)
            return value if ok else self._bad(path, "expected a number")
        if ftype == "integer":
            ok = isinstance(value, int | float) and not isinstance(value, bool) and math.isfinite(value)
            if not ok or value != math.floor(value):
                return self._bad(path, "expected an integer")
            return int(value)
        if ftype in ("array", "set"):
            if not isinstance(value, list):
                return self._bad(path, "expected an array" if ftype == "array" else "expected a set")
            elements = fdef.get("elements") or {}
            items = [self.member(elements, item, f"{path}.{i}") for i, item in enumerate(value, 1)]
            if ftype == "set":
                deduped: list[Any] = []
                for item in items:
                    if item not in deduped:
                        deduped.append(item)
                items = deduped
            return items
        if ftype == "map":
            if not isinstance(value, Mapping):
                return self._bad(path, "expected a map")
            keys_def = dict(fdef.get("keys") or {}, required=True)
            values_def = dict(fdef.get("values") or {}, required=True)
            result = {}
            for k, v in value.items():
                key = self.member(keys_def, k, f"{path}.{k}")
                result[key] = self.member(values_def, v, f"{path}.{k}")
            return result
        if ftype == "record":
            return self.record(fdef.get("fields") or [], value, path)
        return self._bad(path, f"invalid type: {ftype}")

    def _bad(self, path: str, message: str) -> Any:
        self.fail(path, message)
        return _INVALID

    def validators(self, fdef: FieldDef, value: Any) -> str | None:
        ftype = fdef.get("type")
        if "eq" in fdef and value != fdef["eq"]:
            return f"value must be {fdef['eq']}"
        if "not_one_of" in fdef and value in fdef["not_one_of"]:
            return "must not be one of: " + ", ".join(map(str, fdef["not_one_of"]))
        if "one_of" in fdef and value not in fdef["one_of"]:
            return "expected one of: " + ", ".join(map(str, fdef["one_of"]))
        if "gt" in fdef and not value > fdef["gt"]:
            return f"value must be greater than {_fmt_number(fdef['gt'])}"
        if "between" in fdef:
            low, high = fdef["between"]
            if not low <= value <= high:
                return f"value should be between {_fmt_number(low)} and {_fmt_number(high)}"
        len_min = fdef.get("len_min", 1 if ftype == "string" else None)
        if "len_eq" in fdef and _length(value) != fdef["len_eq"]:
            return f"length must be {fdef['len_eq']}"
        if len_min is not None and _length(value) < len_min:
            return f"length must be at least {len_min}"
        if "len_max" in fdef and _length(value) > fdef["len_max"]:
            return f"length must be at most {fdef['len_max']}"
        if "starts_with" in fdef and not value.startswith(fdef["starts_with"]):
            return f"should start with: {fdef['starts_with']}"
        try:
            if "not_match" in fdef and self.lua_find(value, fdef["not_match"]):
                return f"invalid value: {value}"
            if "match" in fdef and not self.lua_find(value, fdef["match"]):
                return f"invalid value: {value}"
        except ValueError as exc:  # a malformed pattern: Lua's message
            return str(exc)
        return None


_INVALID = object()
_REFERENCE = re.compile(r"\{vault://([^/{}]+)/([^{}]+)\}")


def is_reference(value: str) -> bool:
    return _REFERENCE.fullmatch(value) is not None


def resolve_reference(value: str) -> str:
    """Resolve a ``{vault://env/<name>}`` reference like Kong's env vault: the variable is ``<name>``
    upper-cased with ``-`` as ``_``. Like Kong, an unresolvable reference becomes ``""`` and is logged."""
    m = _REFERENCE.fullmatch(value)
    assert m is not None
    vault, resource = m.groups()
    if vault == "env":
        resolved = os.environ.get(resource.upper().replace("-", "_"))
        if resolved is not None:
            return resolved
        log.log(NOTICE, "unable to resolve reference %s", value)
    else:
        log.warning("unable to resolve reference %s (only the env vault is available locally)", value)
    return ""


def _join(path: str, name: str) -> str:
    return f"{path}.{name}" if path else name


def validate_config(
    fields: list[Mapping[str, FieldDef]], config: Any, path: str = "config", *, lua_find: LuaFind
) -> dict[str, Any]:
    """Validate a plugin ``config`` against the record ``fields``; return it with defaults filled.
    ``lua_find`` tests ``match``/``not_match`` patterns (the gateway's ``LuaEngine.lua_find``).

    Raises :class:`SchemaViolation` listing every error as ``<path>: <message>``.
    """
    validator = _Validator(lua_find)
    result = validator.record(fields, {} if config is None else config, path)
    if validator.errors:
        raise SchemaViolation(validator.errors)
    return result
