"""docker-compose.yml, checked without Docker: the Compose Specification's JSON schema (vendored,
see README.md here), interpolation of .env.example as `docker compose config` does it, and the
stack's rules (secrets required, Admin API on loopback, Redis private, limits, health conditions).
Every check is also run on a deliberately broken copy, which must fail."""

from __future__ import annotations

import copy
from typing import Any

import pytest

from . import compose
from .interpolate import InterpolationError, interpolate, parse_env_file


@pytest.fixture(scope="module")
def files() -> tuple[Any, dict[str, str]]:
    doc, env_text = compose.load_files()
    return doc, parse_env_file(env_text)


def test_compose_file_matches_the_compose_schema(files: tuple[Any, dict[str, str]]) -> None:
    doc, env = files
    assert compose.schema_problems(doc) == []
    interpolated, problems = compose.interpolation_problems(doc, compose.filled(env))
    assert problems == []
    assert compose.schema_problems(interpolated) == []


@pytest.mark.parametrize(
    "path, value",
    [
        (("services", "redis", "restart_policy"), "always"),  # not a service attribute
        (("services", "subscriber", "depends_on", "redis", "condition"), "healthy"),
        (("services", "kong", "ports"), "8000:8000"),  # a string, not a list
        (("networks", "aws-masker", "driver_opts"), ["x"]),
    ],
)
def test_a_broken_compose_file_fails_the_schema(files: tuple[Any, dict[str, str]], path, value) -> None:
    doc = copy.deepcopy(files[0])
    node = doc
    for key in path[:-1]:
        node = node[key]
    node[path[-1]] = value
    assert compose.schema_problems(doc)


def test_env_example_declares_every_variable_and_leaves_the_secrets_empty(
    files: tuple[Any, dict[str, str]],
) -> None:
    doc, env = files
    assert compose.secret_problems(doc) == []
    for name in compose.SECRETS:
        assert env[name] == "", f"{name} must be empty in .env.example"
    _, problems = compose.interpolation_problems(doc, compose.filled(env))
    assert problems == []


def test_compose_refuses_to_start_without_the_secrets(files: tuple[Any, dict[str, str]]) -> None:
    doc, env = files
    for name in compose.SECRETS:
        partial = {**compose.filled(env), name: ""}
        _, problems = compose.interpolation_problems(doc, partial)
        assert len(problems) == 1 and f"required variable {name} is missing" in problems[0]


def test_secrets_reach_only_the_services_that_need_them(files: tuple[Any, dict[str, str]]) -> None:
    doc, env = files
    interpolated, _ = compose.interpolation_problems(doc, compose.filled(env, "v"))
    services = interpolated["services"]
    token = "v-aws_masker_token_secret"
    password = "v-aws_masker_redis_password"
    for kong in ("kong", "kong-demo"):
        assert services[kong]["environment"]["AWS_MASKER_TOKEN_SECRET"] == token
        assert services[kong]["environment"]["AWS_MASKER_REDIS_PASSWORD"] == password
    assert services["redis"]["environment"]["REDISCLI_AUTH"] == password
    assert services["subscriber"]["environment"]["REDIS_PASSWORD"] == password
    for name in ("redis", "subscriber", "claude-stub"):
        assert token not in str(services[name])
    assert password not in str(services["claude-stub"])
    # $$ reaches the container as $: redis-server gets the password from its environment
    assert '--requirepass "$REDISCLI_AUTH"' in " ".join(services["redis"]["command"])
    assert "kong.demo.yml" in services["kong-demo"]["environment"]["KONG_DECLARATIVE_CONFIG"]


def test_the_stack_rules_hold(files: tuple[Any, dict[str, str]]) -> None:
    doc, env = files
    interpolated, _ = compose.interpolation_problems(doc, compose.filled(env))
    assert compose.stack_problems(interpolated) == []


@pytest.mark.parametrize(
    "old, new, problem",
    [
        ("${AWS_MASKER_TOKEN_SECRET:?set", "${AWS_MASKER_TOKEN_SECRET:-set", "not required"),
        ('"127.0.0.1:8001:8001"', '"8001:8001"', "Admin API"),
        ("--maxmemory-policy noeviction", "--maxmemory-policy allkeys-lru", "noeviction"),
        (
            "condition: service_healthy\n    healthcheck:",
            "condition: service_started\n    healthcheck:",
            "health",
        ),
        ("EVENT_LOG_RATE_LIMIT:-100}", "EVENT_LOG_RATE_LIMITS:-100}", "not declared"),
        ("    image: redis:7.2-alpine\n", "    image: redis:7.2-alpine\n    ports: ['6379:6379']\n", "host"),
    ],
)
def test_a_broken_copy_fails_the_checks(
    files: tuple[Any, dict[str, str]], old: str, new: str, problem: str
) -> None:
    text = (compose.ROOT / "docker-compose.yml").read_text(encoding="utf-8")
    assert text.count(old) >= 1, old
    broken = compose.load(text.replace(old, new, 1))
    env = compose.filled(files[1])
    interpolated, problems = compose.interpolation_problems(broken, env)
    problems += compose.secret_problems(broken)
    if interpolated is not None:
        problems += compose.stack_problems(interpolated) + compose.schema_problems(interpolated)
    assert any(problem in p for p in problems), problems


@pytest.mark.parametrize(
    "text, env, expected",
    [
        ("a $$b", {}, "a $b"),
        ("${X}", {"X": "1"}, "1"),
        ("$X-y", {"X": "1"}, "1-y"),
        ("${X:-d}", {"X": ""}, "d"),
        ("${X-d}", {"X": ""}, ""),
        ("${X-d}", {}, "d"),
        ("${X:-${Y:-z}}", {}, "z"),
        ("${X:+alt}", {"X": "1"}, "alt"),
        ("${X+alt}", {"X": ""}, "alt"),
        ("${X:?m}", {"X": "v"}, "v"),
        ("${X?m}", {"X": ""}, ""),
    ],
)
def test_interpolation_follows_compose(text: str, env: dict[str, str], expected: str) -> None:
    assert interpolate(text, env) == expected


@pytest.mark.parametrize("text, env", [("${X:?m}", {"X": ""}), ("${X?m}", {}), ("${X", {}), ("a $ b", {})])
def test_interpolation_errors(text: str, env: dict[str, str]) -> None:
    with pytest.raises(InterpolationError):
        interpolate(text, env)


def test_env_file_parsing() -> None:
    env = parse_env_file("# c\n\nA=1\nexport B='two words'\nC=x # note\nD=\n")
    assert env == {"A": "1", "B": "two words", "C": "x", "D": ""}
    with pytest.raises(ValueError):
        parse_env_file("not a pair\n")
