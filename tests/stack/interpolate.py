"""Compose-file variable interpolation, as ``docker compose config`` does it, and ``.env`` files.

Forms (Compose Specification, "Interpolation"): ``$$`` (a literal ``$``), ``$VAR``, ``${VAR}``,
``${VAR:-default}`` / ``${VAR-default}`` (unset or empty / unset), ``${VAR:?message}`` /
``${VAR?message}`` (an error), ``${VAR:+alt}`` / ``${VAR+alt}``. Defaults may themselves hold
references. Values are interpolated, keys are not."""

from __future__ import annotations

import re
from collections.abc import Mapping
from pathlib import Path
from typing import Any

_NAME = r"[A-Za-z_][A-Za-z0-9_]*"
_BARE = re.compile(rf"\$({_NAME})")


class InterpolationError(ValueError):
    """A required variable is missing (``${VAR:?message}``), or a reference is malformed."""


def _closing_brace(text: str, start: int) -> int:
    depth = 0
    i = start
    while i < len(text):
        if text.startswith("${", i):
            depth += 1
            i += 2
            continue
        if text[i] == "}":
            depth -= 1
            if depth == 0:
                return i
        i += 1
    raise InterpolationError(f"unterminated ${{ in {text!r}")


def _braced(expr: str, env: Mapping[str, str], used: set[str]) -> str:
    m = re.fullmatch(rf"({_NAME})(?:(:?[-?+])(.*))?", expr, re.S)
    if not m:
        raise InterpolationError(f"invalid interpolation format: ${{{expr}}}")
    name, op, arg = m[1], m[2], m[3]
    used.add(name)
    value = env.get(name)
    if op is None:
        return value or ""
    set_ = value is not None
    nonempty = bool(value)
    ok = nonempty if op.startswith(":") else set_
    kind = op[-1]
    if kind == "-":
        return value if ok else interpolate(arg, env, used)  # type: ignore[return-value]
    if kind == "?":
        if not ok:
            raise InterpolationError(f"required variable {name} is missing a value: {arg}")
        return value  # type: ignore[return-value]
    return interpolate(arg, env, used) if ok else ""


def interpolate(text: str, env: Mapping[str, str], used: set[str] | None = None) -> str:
    """``text`` with every reference replaced; the names referenced are added to ``used``."""
    used = set() if used is None else used
    out: list[str] = []
    i = 0
    while i < len(text):
        ch = text[i]
        if ch != "$":
            out.append(ch)
            i += 1
            continue
        if text.startswith("$$", i):
            out.append("$")
            i += 2
        elif text.startswith("${", i):
            end = _closing_brace(text, i)
            out.append(_braced(text[i + 2 : end], env, used))
            i = end + 1
        elif m := _BARE.match(text, i):
            used.add(m[1])
            out.append(env.get(m[1]) or "")
            i = m.end()
        else:
            raise InterpolationError(f"invalid interpolation format: a lone $ in {text!r}")
    return "".join(out)


def interpolate_tree(node: Any, env: Mapping[str, str], used: set[str] | None = None) -> Any:
    """Interpolate every string value of a loaded YAML document."""
    used = set() if used is None else used
    if isinstance(node, str):
        return interpolate(node, env, used)
    if isinstance(node, dict):
        return {key: interpolate_tree(value, env, used) for key, value in node.items()}
    if isinstance(node, list):
        return [interpolate_tree(value, env, used) for value in node]
    return node


def required_names(node: Any) -> set[str]:
    """Names referenced as ``${VAR:?...}`` or ``${VAR?...}`` anywhere in the document."""
    found: set[str] = set()
    if isinstance(node, str):
        found.update(re.findall(rf"\$\{{({_NAME}):?\?", node.replace("$$", "")))
    elif isinstance(node, dict):
        for value in node.values():
            found |= required_names(value)
    elif isinstance(node, list):
        for value in node:
            found |= required_names(value)
    return found


def parse_env_file(text: str) -> dict[str, str]:
    """A ``.env`` file: ``KEY=VALUE`` lines; ``#`` comments; optional single or double quotes."""
    values: dict[str, str] = {}
    for number, raw in enumerate(text.splitlines(), 1):
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        if line.startswith("export "):
            line = line[len("export ") :].strip()
        key, sep, value = line.partition("=")
        if not sep or not re.fullmatch(_NAME, key.strip()):
            raise ValueError(f".env line {number}: not KEY=VALUE")
        value = value.strip()
        if len(value) >= 2 and value[0] == value[-1] and value[0] in "'\"":
            value = value[1:-1]
        elif " #" in value:
            value = value.split(" #", 1)[0].rstrip()
        values[key.strip()] = value
    return values


def load_env_file(path: Path) -> dict[str, str]:
    return parse_env_file(path.read_text(encoding="utf-8"))
