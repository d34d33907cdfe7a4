"""The rules kong/Dockerfile and subscriber/Dockerfile must follow; each check returns its problems."""

from __future__ import annotations

import re
import shlex

import yaml

from .dockerfile import Dockerfile, Stage
from .image import KONG_DEFAULT_PREFIX, ROOT, venv_of

COMPILERS = ("build-essential", "gcc", "g++", "python3-dev", "make")
_KONG_IMAGE = re.compile(r"kong:3\.9\.\d+(@sha256:[0-9a-f]{64})?")
_SIZE = re.compile(r"(\d+)([km]?)", re.I)
LUA_PLUGINS = ROOT / "kong" / "plugins"  # our Lua plugins, one directory each


def _size(value: str) -> int:
    m = _SIZE.fullmatch(value.strip())
    assert m, value
    return int(m[1]) * {"": 1, "k": 1024, "m": 1024**2}[m[2].lower()]


def last_user(stage: Stage) -> str | None:
    users = stage.all("USER")
    return users[-1].args.strip() if users else None


def common_problems(df: Dockerfile) -> list[str]:
    problems = []
    if len(df.stages) < 2:
        problems.append("not a multi-stage build")
    final = df.final
    user = last_user(final)
    if user is None or user.split(":")[0] in ("root", "0"):
        problems.append(f"the final stage runs as {user or 'root (no USER)'}")
    if not final.all("HEALTHCHECK"):
        problems.append("no HEALTHCHECK")
    for ins in final.all("RUN"):
        if "apt-get install" in ins.args and any(c in ins.args.split() for c in COMPILERS):
            problems.append(f"line {ins.line}: compilers in the final image")
    installs = [i.args for s in df.stages for i in s.all("RUN") if "pip install" in i.args and " ." in i.args]
    if not installs or not all("--only-binary kong-pdk" in args for args in installs):
        problems.append("kong-pdk is not installed from its wheel (--only-binary kong-pdk)")
    venv = venv_of(df)
    if not any(src == venv and frm for frm, (src, *_), _dest in final.copies() if src):
        problems.append("the final stage does not copy the build stage's venv")
    return problems


def kong_problems(df: Dockerfile, dump_name: str, kong_yml: str) -> list[str]:
    """kong/Dockerfile: base, DB-less, plugins, plugin server commands, Lua path, limits."""
    problems = common_problems(df)
    final = df.final
    env = final.env()
    for stage in df.stages:
        if not _KONG_IMAGE.fullmatch(stage.base):
            problems.append(f"base {stage.base} is not a pinned Kong 3.9 image")
    if last_user(final) != "kong":
        problems.append("the final stage does not run as the kong user")
    health = " ".join(i.args for i in final.all("HEALTHCHECK"))
    if '["kong", "health"]' not in health:
        problems.append("HEALTHCHECK is not `kong health`")
    expect = {"KONG_DATABASE": "off", "KONG_DECLARATIVE_CONFIG": "/kong/kong.yml"}
    for key, value in expect.items():
        if env.get(key) != value:
            problems.append(f"{key} is {env.get(key)!r}, not {value!r}")
    if not any(dest == env.get("KONG_DECLARATIVE_CONFIG") for frm, _src, dest in final.copies() if not frm):
        problems.append("kong.yml is not copied to KONG_DECLARATIVE_CONFIG")
    plugins = env.get("KONG_PLUGINS", "").split(",")
    config = yaml.safe_load(kong_yml)
    # our Lua plugins that kong.yml enables (kong/plugins/<name>/): each must be loaded by Kong
    ours = sorted({p["name"] for p in config["plugins"]} & {d.name for d in LUA_PLUGINS.iterdir()})
    for name in ("bundled", dump_name, *ours):
        if name not in plugins:
            problems.append(f"KONG_PLUGINS lacks {name}")
    problems += plugin_server_problems(env, dump_name, venv_of(df))
    if "KONG_NGINX_WORKER_PROCESSES" not in env:
        problems.append("KONG_NGINX_WORKER_PROCESSES is not set")
    max_body = next(p["config"]["max_body_size"] for p in config["plugins"] if p["name"] == dump_name)
    for key in ("KONG_NGINX_HTTP_CLIENT_BODY_BUFFER_SIZE", "KONG_NGINX_HTTP_CLIENT_MAX_BODY_SIZE"):
        if key not in env or _size(env[key]) < max_body:
            problems.append(f"{key} is below max_body_size ({max_body})")
    lua_path = env.get("KONG_LUA_PACKAGE_PATH", "")
    for name in ours:
        lua_dests = [dest for frm, srcs, dest in final.copies() if not frm and f"kong/plugins/{name}" in srcs]
        # Kong requires "kong.plugins.<name>.handler": some template must land in the copy
        module = f"kong/plugins/{name}/handler"
        found = [
            t.replace("?", module)
            for t in lua_path.split(";")
            if "?" in t and any(t.replace("?", module).startswith(d.rstrip("/") + "/") for d in lua_dests)
        ]
        if not found:
            problems.append(f"the Lua plugin {name} is not copied onto KONG_LUA_PACKAGE_PATH")
    if not lua_path.endswith(";;"):
        problems.append("KONG_LUA_PACKAGE_PATH drops Kong's default path (end it with ;;)")
    return problems


def plugin_server_problems(env: dict[str, str], dump_name: str, venv: str) -> list[str]:
    """The pluginserver keys spelled out and consistent with each other and with the dump's Name."""
    problems = []
    server = env.get("KONG_PLUGINSERVER_NAMES", "")
    if server != dump_name:
        return [f"KONG_PLUGINSERVER_NAMES is {server!r}, not {dump_name!r}"]
    key = "KONG_PLUGINSERVER_" + server.upper().replace("-", "_")
    socket, start, query = (env.get(f"{key}_{part}") for part in ("SOCKET", "START_CMD", "QUERY_CMD"))
    if not (socket and start and query):
        return [f"{key}_SOCKET, _START_CMD and _QUERY_CMD must all be set"]
    exe = f"{venv}/bin/aws-masker-server"
    start_words, query_words = shlex.split(start), shlex.split(query)
    if start_words[:1] != [exe] or query_words != [exe, "--dump"]:
        problems.append(f"the commands must run {exe} by its absolute path (and QUERY_CMD with --dump)")
    prefix = KONG_DEFAULT_PREFIX
    if "KONG_PREFIX" in env:
        prefix = env["KONG_PREFIX"]
    if start_words[1:] != ["--kong-prefix", prefix]:
        problems.append(f"START_CMD must be `{exe} --kong-prefix {prefix}` (Kong's prefix)")
    if socket != f"{prefix}/{dump_name}.sock":
        problems.append(f"SOCKET {socket} is not where the server listens: {prefix}/{dump_name}.sock")
    return problems


def subscriber_problems(df: Dockerfile) -> list[str]:
    problems = common_problems(df)
    if not df.final.base.startswith("python:3.12-slim"):
        problems.append(f"base {df.final.base} is not a slim Python")
    entry = " ".join(i.args for i in df.final.all("ENTRYPOINT") + df.final.all("CMD"))
    if '"aws-masker"' not in entry or '"subscriber"' not in entry:
        problems.append("the image does not run `aws-masker subscriber`")
    if "/health" not in " ".join(i.args for i in df.final.all("HEALTHCHECK")):
        problems.append("the HEALTHCHECK does not ask /health")
    return problems
