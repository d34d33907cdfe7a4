"""Checks of docker-compose.yml that need no Docker engine: the Compose Specification's JSON schema,
interpolation against .env.example, and this stack's own rules. Each check returns its problems."""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from functools import cache
from pathlib import Path
from typing import Any

import jsonschema
import yaml

from . import dockerfile
from .interpolate import InterpolationError, interpolate_tree, required_names

HERE = Path(__file__).resolve().parent
ROOT = HERE.parents[1]
SECRETS = frozenset({"AWS_MASKER_TOKEN_SECRET", "AWS_MASKER_REDIS_PASSWORD"})


@cache
def _validator() -> jsonschema.Draft7Validator:
    schema = json.loads((HERE / "compose-spec.json").read_text(encoding="utf-8"))
    return jsonschema.Draft7Validator(schema)


def load(text: str) -> Any:
    return yaml.safe_load(text)


def schema_problems(doc: Any) -> list[str]:
    return [f"{e.json_path}: {e.message}" for e in _validator().iter_errors(doc)]


def interpolation_problems(doc: Any, env: Mapping[str, str]) -> tuple[Any, list[str]]:
    """``(interpolated document, problems)``; problems name undeclared variables and failed ``:?``."""
    used: set[str] = set()
    try:
        result = interpolate_tree(doc, env, used)
    except InterpolationError as exc:
        return None, [str(exc)]
    undeclared = sorted(used - set(env))
    return result, [f"{name} is used but not declared in the env file" for name in undeclared]


def secret_problems(doc: Any) -> list[str]:
    missing = sorted(SECRETS - required_names(doc))
    return [f"{name} is not required with ${{{name}:?...}}" for name in missing]


def _image_has_healthcheck(service: Mapping[str, Any]) -> bool:
    build = service.get("build")
    if not isinstance(build, Mapping) or "dockerfile" not in build:
        return False
    return bool(dockerfile.load(ROOT / build["dockerfile"]).final.all("HEALTHCHECK"))


def _published(service: Mapping[str, Any]) -> list[str]:
    return [str(p) for p in service.get("ports", [])]


def stack_problems(doc: Mapping[str, Any]) -> list[str]:
    """This stack's rules, on the interpolated document."""
    problems: list[str] = []
    services: Mapping[str, Any] = doc.get("services", {})
    networks = set(doc.get("networks", {}))
    if len(networks) != 1:
        problems.append(f"expected one network, got {sorted(networks)}")
    for name, svc in services.items():
        if svc.get("restart") not in ("always", "unless-stopped", "on-failure"):
            problems.append(f"{name}: no restart policy")
        limits = svc.get("deploy", {}).get("resources", {}).get("limits", {})
        if not {"cpus", "memory"} <= set(limits):
            problems.append(f"{name}: no cpu and memory limits")
        if set(svc.get("networks", [])) != networks:
            problems.append(f"{name}: not on the stack's network")
        if "healthcheck" not in svc and not _image_has_healthcheck(svc):
            problems.append(f"{name}: no healthcheck")
        for port in _published(svc):
            if port.endswith(":8001") and not port.startswith("127.0.0.1:"):
                problems.append(f"{name}: the Admin API is published beyond 127.0.0.1")
        for dep, cond in (svc.get("depends_on") or {}).items():
            if cond.get("condition") != "service_healthy":
                problems.append(f"{name}: depends on {dep} without a health condition")
    kongs = [n for n, s in services.items() if s.get("build", {}).get("dockerfile") == "kong/Dockerfile"]
    for name in kongs:
        ports = _published(services[name])
        if not any(p.endswith(":8000:8000") for p in ports):
            problems.append(f"{name}: proxy not on 8000")
    profiles = [tuple(services[n].get("profiles", ())) for n in kongs]
    if len(kongs) != 2 or any(len(p) != 1 for p in profiles) or len(set(profiles)) != 2:
        problems.append(
            f"expected two Kong services in two profiles, got {dict(zip(kongs, profiles, strict=True))}"
        )
    redis = services.get("redis", {})
    if redis.get("ports"):
        problems.append("redis: published on the host")
    if not re.fullmatch(r"redis:7\.\d+(-alpine)?", str(redis.get("image"))):
        problems.append("redis: not a pinned 7.x image")
    command = " ".join(redis.get("command", []))
    for needed in ("--requirepass", "--maxmemory-policy noeviction", "--maxmemory "):
        if needed not in command:
            problems.append(f"redis: command lacks {needed.strip()}")
    sub = services.get("subscriber", {})
    if (sub.get("depends_on") or {}).get("redis", {}).get("condition") != "service_healthy":
        problems.append("subscriber: does not wait for a healthy redis")
    return problems


def load_files() -> tuple[Any, str]:
    return load((ROOT / "docker-compose.yml").read_text(encoding="utf-8")), (ROOT / ".env.example").read_text(
        encoding="utf-8"
    )


def filled(env: Mapping[str, str], value: str = "x") -> dict[str, str]:
    """``env`` with the secrets given a value, as a user's .env would."""
    return {**env, **{name: f"{value}-{name.lower()}" for name in SECRETS}}
