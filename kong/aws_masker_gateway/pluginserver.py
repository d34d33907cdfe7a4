"""Plugin-server discovery (``query_cmd``) and process supervision (``start_cmd``), as Kong 3.9 does it.

* The query command runs through ``/bin/sh``; only stdout is parsed (``json.loads``) and only the first
  plugin of the dump is used (3.9 semantics). The info is validated like ``kong/db/dao/plugins.lua``.
* The server runs as ``exec <start_cmd>`` through ``/bin/sh``, so it is a **direct child** of the
  gateway. Stdout and stderr are merged and every line is logged at INFO as ``[<name>:<pid>] <line>``
  (hidden at the default ``notice`` level, like Kong). A dead server is respawned at most once per
  second. Kong does not wait for the socket; :meth:`PluginServerProcess.wait_ready` is offered for the
  CLI and tests. Stop sends SIGTERM.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import re
import signal
import subprocess
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from .logs import NOTICE
from .orphans import die_with_parent
from .settings import PluginServerDef

log = logging.getLogger("aws_masker_gateway.pluginserver")

KNOWN_PHASES = ("certificate", "rewrite", "log", "access", "preread", "response")
_VERSION_RE = re.compile(r"^\d+(\.\d+){0,2}$")
RESPAWN_INTERVAL = 1.0
STOP_GRACE = 5.0


class PluginInfoError(RuntimeError):
    """The query command failed or printed an info object Kong would reject."""


@dataclass(frozen=True)
class ExternalPluginInfo:
    name: str
    priority: int
    version: str
    phases: tuple[str, ...]
    config_fields: list[Mapping[str, Any]]
    server: PluginServerDef


def run_query(server: PluginServerDef, timeout: float = 60.0) -> str:
    """Run ``query_cmd`` like ``io.popen``: through the shell, stdout only."""
    try:
        proc = subprocess.run(
            ["/bin/sh", "-c", server.query_cmd],
            capture_output=True,
            timeout=timeout,
            check=False,
        )
    except (OSError, subprocess.TimeoutExpired) as exc:
        raise PluginInfoError(f"error loading plugins info from [{server.name}]: {exc}") from exc
    for line in proc.stderr.decode("utf-8", "replace").splitlines():
        log.debug("[%s query] %s", server.name, line)
    return proc.stdout.decode("utf-8", "replace")


def parse_plugin_info(server: PluginServerDef, dump_text: str) -> ExternalPluginInfo:
    """Decode and validate the dump (first element only, Kong 3.9)."""
    try:
        dump = json.loads(dump_text)
    except ValueError as exc:
        raise PluginInfoError(f"failed decoding plugin info: {exc}") from exc
    plugins = dump.get("Plugins") if isinstance(dump, dict) else dump
    if not isinstance(plugins, list) or not plugins or not isinstance(plugins[0], dict):
        raise PluginInfoError(f"not a plugin info table: \n{server.query_cmd}\n{dump_text}")
    info = plugins[0]
    name = info.get("Name")
    if not isinstance(name, str) or not name:
        raise PluginInfoError(f"plugin info from [{server.name}] has no Name")
    priority = info.get("Priority")
    if isinstance(priority, bool) or not isinstance(priority, int | float) or priority != int(priority):
        raise PluginInfoError(
            f'Plugin "{name}" cannot be loaded because its PRIORITY field is not '
            f'a valid integer number, got: "{priority}".'
        )
    version = info.get("Version")
    if not isinstance(version, str) or not _VERSION_RE.match(version):
        raise PluginInfoError(
            f'Plugin "{name}" cannot be loaded because its VERSION field does not '
            f'follow the "x.y.z" format, got: "{version}".'
        )
    phases = info.get("Phases") or []
    unknown = [p for p in phases if p not in KNOWN_PHASES]
    if not isinstance(phases, list) or unknown:
        raise PluginInfoError(f'Plugin "{name}" reports unknown phases: {unknown or phases}')
    if "response" in phases and ("header_filter" in phases or "body_filter" in phases):
        raise PluginInfoError(
            f'Plugin "{name}" can\'t be loaded because it implements both `response` '
            "and `header_filter` or `body_filter` methods."
        )
    config = _config_record(info.get("Schema"))
    if config is None:
        raise PluginInfoError(f'Plugin "{name}" schema must have fields[0].config of type record')
    return ExternalPluginInfo(
        name=name,
        priority=int(priority),
        version=version,
        phases=tuple(phases),
        config_fields=list(config.get("fields") or []),
        server=server,
    )


def _config_record(schema: Any) -> Mapping[str, Any] | None:
    if not isinstance(schema, dict):
        return None
    fields = schema.get("fields")
    if not isinstance(fields, list) or not fields or not isinstance(fields[0], dict):
        return None
    config = fields[0].get("config")
    if not isinstance(config, dict) or config.get("type") != "record":
        return None
    if not isinstance(config.get("fields", []), list):
        return None
    return config


def query_plugin_info(server: PluginServerDef) -> ExternalPluginInfo:
    return parse_plugin_info(server, run_query(server))


class PluginServerProcess:
    """Supervises one plugin server like Kong's ``pluginserver_timer`` (worker 0)."""

    def __init__(self, server: PluginServerDef, respawn: bool = True) -> None:
        self.server = server
        self.respawn = respawn
        self.pid: int | None = None
        self.spawn_count = 0
        self._proc: asyncio.subprocess.Process | None = None
        self._task: asyncio.Task[None] | None = None
        self._stopping = False
        self._spawned = asyncio.Event()

    def start(self) -> None:
        if self.server.start_cmd is None:
            log.warning(
                "start_command undefined for pluginserver %s; assuming external process management",
                self.server.name,
            )
            return
        self._task = asyncio.get_running_loop().create_task(self._supervise(), name=f"ps-{self.server.name}")

    async def _supervise(self) -> None:
        loop = asyncio.get_running_loop()
        next_spawn = 0.0
        while not self._stopping:
            delay = next_spawn - loop.time()
            if delay > 0:
                await asyncio.sleep(delay)
            if self._stopping:
                return
            log.log(NOTICE, "[pluginserver] starting pluginserver process for %s", self.server.name)
            self._proc = await asyncio.create_subprocess_exec(
                "/bin/sh",
                "-c",
                f"exec {self.server.start_cmd}",
                stdin=subprocess.DEVNULL,
                stdout=subprocess.PIPE,
                stderr=subprocess.STDOUT,
                start_new_session=True,
                preexec_fn=die_with_parent,
            )
            next_spawn = loop.time() + RESPAWN_INTERVAL
            self.pid = self._proc.pid
            self.spawn_count += 1
            self._spawned.set()
            log.log(NOTICE, "[pluginserver] started, pid %d", self._proc.pid)
            await self._grab_logs(self._proc)
            status = await self._proc.wait()
            if status == 127:
                log.error(
                    '[pluginserver] external pluginserver "%s" start command "%s" exited with '
                    '"command not found"',
                    self.server.name,
                    self.server.start_cmd,
                )
            else:
                log.log(NOTICE, "external pluginserver '%s' terminated: exit %s", self.server.name, status)
            if not self.respawn:
                break
        log.log(NOTICE, "[pluginserver] exiting: pluginserver '%s' not respawned.", self.server.name)

    async def _grab_logs(self, proc: asyncio.subprocess.Process) -> None:
        assert proc.stdout is not None
        prefix = f"[{self.server.name}:{proc.pid}] "
        async for raw in proc.stdout:
            line = raw.decode("utf-8", "replace").rstrip("\r\n")
            if line:
                log.info("%s%s", prefix, line)

    async def wait_ready(self, timeout: float = 30.0) -> None:
        """Wait until the socket accepts connections (Kong itself never waits)."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        while True:
            try:
                _, writer = await asyncio.open_unix_connection(self.server.socket)
            except OSError:
                if loop.time() >= deadline:
                    raise TimeoutError(
                        f"plugin server {self.server.name} not listening on {self.server.socket}"
                    ) from None
                if self._task is not None and self._task.done():
                    name = self.server.name
                    raise RuntimeError(f"plugin server {name} exited and is not respawned") from None
                await asyncio.sleep(0.02)
                continue
            writer.close()
            with contextlib.suppress(Exception):
                await writer.wait_closed()
            return

    def send_signal(self, sig: int) -> None:
        if self._proc is not None and self._proc.returncode is None:
            self._proc.send_signal(sig)

    async def stop(self) -> None:
        """SIGTERM the server (Kong's ``stop_pluginservers``); SIGKILL after a grace period."""
        self._stopping = True
        proc = self._proc
        if proc is not None and proc.returncode is None:
            proc.send_signal(signal.SIGTERM)
            try:
                await asyncio.wait_for(proc.wait(), STOP_GRACE)
            except asyncio.TimeoutError:
                proc.kill()
                await proc.wait()
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
