"""kong/Dockerfile's plugin server settings, run for real: the image's final stage is laid out under a
scratch root (tests/stack/image.py), the local gateway reads the image's KONG_* settings, runs its
QUERY_CMD, loads the Lua plugin from its KONG_LUA_PACKAGE_PATH, validates kong.yml (and the demo
config the image derives from it) against the dumped schema, and starts the plugin server with
exactly START_CMD's arguments; then requests go through it to the Claude stub."""

from __future__ import annotations

import json
import os
import shutil
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from e2e.stack import CLI, SECRET, Proc, http, stub_config

from aws_masker.tokens import TOKEN_RE
from aws_masker_gateway.app import GatewayError, create_gateway
from aws_masker_gateway.declarative import DeclarativeError
from aws_masker_gateway.settings import load_settings
from aws_masker_stack.ports import free_ports

from . import dockerfile, image

pytestmark = pytest.mark.e2e

COMPLEX = "Analyze: EC2 i-1234567890abcdef0, S3 my-bucket, RDS prod-db, IP 10.0.1.100"
ORIGINALS = ("i-1234567890abcdef0", "my-bucket", "prod-db", "10.0.1.100")


@pytest.fixture(scope="module")
def installed() -> Iterator[tuple[Path, dict[str, str]]]:
    # a short root: the socket path must fit in sun_path (108 bytes)
    root = Path(tempfile.mkdtemp(prefix="akimg"))
    try:
        env = image.install(dockerfile.load(image.ROOT / "kong" / "Dockerfile"), root)
        yield root, env
    finally:
        shutil.rmtree(root, ignore_errors=True)


def settings_for(root: Path, env: dict[str, str]):
    return load_settings(env, prefix=image.reroot(image.KONG_DEFAULT_PREFIX, root))


@pytest.mark.parametrize("config", ["kong.yml", "kong.demo.yml"])
def test_the_image_settings_load_kong_yml(
    installed: tuple[Path, dict[str, str]], config: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    root, env = installed
    monkeypatch.chdir(root)  # Kong's default Lua path starts with ./?.lua: not the repository
    path = Path(env["KONG_DECLARATIVE_CONFIG"]).with_name(config)
    text = path.read_text(encoding="utf-8")
    if config == "kong.yml":
        assert text == (image.ROOT / "kong.yml").read_text(encoding="utf-8")
    else:
        assert "https://api.anthropic.com" not in text and "http://claude-stub:8080" in text
    gateway = create_gateway(settings_for(root, env), text, respawn=False)
    assert set(gateway.infos) == {"aws-masker"}
    assert set(gateway.lua_plugins) == {"aws-masker-restore", "aws-masker-collect"}
    names = {p.name for p in gateway.config.plugins}
    assert {"aws-masker", "aws-masker-restore", "post-function"} <= names


@pytest.mark.parametrize(
    "old, new, error",
    [
        (
            "      mask_hostnames: true\n",
            "      mask_hostnames: true\n      mask_everything: true\n",
            "unknown field",
        ),
        ("event_sampling_rate: 1.0", "event_sampling_rate: 2.0", "event_sampling_rate"),
        ("  - name: aws-masker-restore\n", "  - name: aws-masker-restored\n", "aws-masker-restored"),
        ('_format_version: "3.0"', '_format_version: "9.9"', "_format_version"),
        ("max_held_bytes: 1048576", "max_held_bytes: -1", "max_held_bytes"),
    ],
)
def test_a_broken_kong_yml_is_refused(
    installed: tuple[Path, dict[str, str]], old: str, new: str, error: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    root, env = installed
    monkeypatch.chdir(root)
    text = (image.ROOT / "kong.yml").read_text(encoding="utf-8")
    assert old in text, old
    with pytest.raises((DeclarativeError, GatewayError)) as info:
        create_gateway(settings_for(root, env), text.replace(old, new, 1), respawn=False)
    assert error in str(info.value)


def test_without_the_lua_copy_kong_refuses_to_start(
    installed: tuple[Path, dict[str, str]], monkeypatch: pytest.MonkeyPatch
) -> None:
    root, env = installed
    monkeypatch.chdir(root)
    elsewhere = {**env, "KONG_LUA_PACKAGE_PATH": str(root / "nowhere" / "?.lua") + ";;"}
    text = (image.ROOT / "kong.yml").read_text(encoding="utf-8")
    with pytest.raises(GatewayError, match="aws-masker-restore"):
        create_gateway(settings_for(root, elsewhere), text, respawn=False)


@dataclass
class Running:
    url: str
    stub_url: str
    gateway: Proc
    start_words: list[str]
    socket: str


@pytest.fixture(scope="module")
def running(installed: tuple[Path, dict[str, str]]) -> Iterator[Running]:
    root, image_env = installed
    env = {k: v for k, v in os.environ.items() if not k.upper().startswith("KONG_")}
    env.update(image_env)
    env.update({"AWS_MASKER_TOKEN_SECRET": SECRET, "PYTHONUNBUFFERED": "1"})
    stub_port, port = free_ports(2)
    stub = Proc([*CLI, "stub", "--listen", f"127.0.0.1:{stub_port}"], env, "listening on", cwd=root)
    stub_url = f"http://127.0.0.1:{stub_port}"
    # kong.yml as shipped, its upstream moved to the stub (monitoring off: no Redis here)
    config = root / "kong.e2e.yml"
    config.write_text(stub_config(stub_url))
    prefix = image.reroot(image.KONG_DEFAULT_PREFIX, root)
    try:
        gateway = Proc(
            [*CLI, "gateway", "--config", str(config), "--listen", f"127.0.0.1:{port}", "--prefix", prefix],
            env,
            "ready on",
            cwd=root,  # not the repository: the Lua plugin must come from the image's Lua path
        )
    except Exception:
        stub.stop()
        raise
    try:
        yield Running(
            f"http://127.0.0.1:{port}",
            stub_url,
            gateway,
            image.start_words(image_env),
            image_env["KONG_PLUGINSERVER_AWS_MASKER_SOCKET"],
        )
    finally:
        gateway.stop()
        stub.stop()


def post(r: Running, path: str, body: dict) -> tuple[int, dict[str, str], bytes]:
    headers = {"content-type": "application/json", "anthropic-version": "2023-06-01", "x-api-key": "test-key"}
    return http("POST", r.url + path, body, headers)


def plugin_server_argv(r: Running) -> list[str]:
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
            if int(fields[1]) == r.gateway.proc.pid:
                return (stat.parent / "cmdline").read_bytes().decode().split("\0")[:-1]
        except OSError:
            continue
    raise AssertionError("no plugin server")


def test_the_plugin_server_runs_exactly_start_cmd(running: Running) -> None:
    argv = plugin_server_argv(running)
    # exec of a script: the kernel puts the interpreter first, then the script and its arguments
    assert argv[-len(running.start_words) :] == running.start_words
    assert Path(running.socket).is_socket()


def test_requests_are_masked_and_restored_through_it(running: Running) -> None:
    body = {"model": "claude-sonnet-5", "max_tokens": 300, "messages": [{"role": "user", "content": COMPLEX}]}
    status, _, answer = post(running, "/claude-proxy/v1/messages", body)
    assert status == 200, answer[:200]
    text = json.loads(answer)["content"][0]["text"]
    assert all(o in text for o in ORIGINALS) and not TOKEN_RE.search(text)
    seen = json.loads(http("GET", running.stub_url + "/last-request")[2])["user_text"]
    assert not any(o in seen for o in ORIGINALS) and len(TOKEN_RE.findall(seen)) == 4
    status, headers, streamed = post(running, "/v1/messages", {**body, "stream": True})
    assert status == 200 and headers["Content-Type"].startswith("text/event-stream")
    deltas = [
        json.loads(line[len("data: ") :])["delta"].get("text", "")
        for line in streamed.decode().splitlines()
        if line.startswith("data: ") and '"content_block_delta"' in line
    ]
    joined = "".join(deltas)
    assert all(o in joined for o in ORIGINALS) and not TOKEN_RE.search(joined)
    assert json.loads(http("GET", running.stub_url + "/stats")[2])["leaks"] == 0
