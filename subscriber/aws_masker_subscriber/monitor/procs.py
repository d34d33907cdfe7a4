"""Find the stack's processes and read their CPU and RSS (psutil).

Exact pids first, from the data sources themselves:
- the subscriber: ``pid`` in its ``/stats``;
- the plugin servers: the ``pid`` of each ``publisher_stats`` whose ``node`` is this host;
- the gateway: the parent of a plugin server (Kong, and the local gateway, start it as a child);
- Redis: ``process_id`` in ``INFO`` (when that pid is a local ``redis-server``).

A role none of these names is looked up by command line (so several stacks on one machine may all
show): ``aws-masker gateway`` or Kong's ``nginx: master process``; ``aws-masker-server`` or
``-m aws_masker.server``; ``aws-masker subscriber``; a process named ``redis-server``.
"""

from __future__ import annotations

import os
import socket
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import psutil

ROLES = ("gateway", "plugin server", "subscriber", "redis")
_CLI_MODULES = ("aws_masker.cli",)
_CLI_SCRIPTS = ("aws-masker",)

# psutil measures CPU between two calls on the same Process object: keep them across samples.
_seen: dict[int, psutil.Process] = {}


@dataclass(frozen=True)
class ProcessUsage:
    role: str
    pid: int
    cpu_percent: float
    rss_bytes: int
    found_by: str  # "stats", "redis info", "parent" or "command line"


def _cli_subcommand(cmdline: Sequence[str]) -> str | None:
    """``gateway`` for ``python -m aws_masker.cli gateway ...`` or ``.../aws-masker gateway ...``."""
    for i, arg in enumerate(cmdline[:4]):
        if arg in _CLI_MODULES or os.path.basename(arg) in _CLI_SCRIPTS:
            return cmdline[i + 1] if i + 1 < len(cmdline) else None
    return None


def role_of(name: str, cmdline: Sequence[str]) -> str | None:
    """The stack role a command line belongs to, if any."""
    sub = _cli_subcommand(cmdline)
    if sub == "gateway":
        return "gateway"
    if sub == "subscriber":
        return "subscriber"
    head = list(cmdline[:3])
    if any(os.path.basename(a) == "aws-masker-server" for a in head) or "aws_masker.server" in head:
        return "plugin server"
    if cmdline and cmdline[0].startswith("nginx: master process") and "kong" in cmdline[0]:
        return "gateway"
    if name == "redis-server" or (cmdline and os.path.basename(cmdline[0].split()[0]) == "redis-server"):
        return "redis"
    return None


def _process(pid: int) -> psutil.Process | None:
    proc = _seen.get(pid)
    try:
        if proc is None or not proc.is_running():
            proc = psutil.Process(pid)
            proc.cpu_percent(None)  # the first call starts the measurement
            _seen[pid] = proc
        return proc
    except (psutil.Error, OSError):
        _seen.pop(pid, None)
        return None


def known_pids(stats: dict[str, Any] | None, info: dict[str, Any] | None) -> list[tuple[str, int, str]]:
    """(role, pid, found_by) from the data sources."""
    found: list[tuple[str, int, str]] = []
    stats = stats or {}
    if isinstance(stats.get("pid"), int):
        found.append(("subscriber", stats["pid"], "stats"))
    host = socket.gethostname()
    for pub in stats.get("publishers", []):
        if pub.get("node") == host and isinstance(pub.get("pid"), int) and psutil.pid_exists(pub["pid"]):
            found.append(("plugin server", pub["pid"], "stats"))
            proc = _process(pub["pid"])
            parent = proc.parent() if proc is not None else None
            if parent is not None and all(p != parent.pid for _r, p, _b in found):
                found.append(("gateway", parent.pid, "parent"))
    pid = (info or {}).get("process_id")
    if isinstance(pid, int):
        proc = _process(pid)
        if proc is not None and "redis" in proc.name():
            found.append(("redis", pid, "redis info"))
    return found


def find_processes(stats: dict[str, Any] | None, info: dict[str, Any] | None) -> list[ProcessUsage]:
    found = known_pids(stats, info)
    missing = set(ROLES) - {role for role, _pid, _by in found}
    if missing:
        for proc in psutil.process_iter(["pid", "name", "cmdline"]):
            try:
                role = role_of(proc.info["name"] or "", proc.info["cmdline"] or [])
            except (psutil.Error, OSError):
                continue
            if role in missing and proc.pid != os.getpid():
                found.append((role, proc.pid, "command line"))
    usages = []
    for role, pid, by in found:
        proc = _process(pid)
        if proc is None:
            continue
        try:
            with proc.oneshot():
                usages.append(ProcessUsage(role, pid, proc.cpu_percent(None), proc.memory_info().rss, by))
        except (psutil.Error, OSError):
            continue
    usages.sort(key=lambda u: (ROLES.index(u.role), u.pid))
    return usages
