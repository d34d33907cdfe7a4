"""The Claude Code CLI as a real client of the local gateway, with no network but loopback.

The CLI runs in a network namespace of its own (``unshare -n``), where only a loopback interface
exists: whatever else it tries to reach (telemetry, updates, the real API) fails. Its
``ANTHROPIC_BASE_URL`` points at a port on that loopback, which :func:`netns_main` (run inside the
namespace) forwards to a Unix socket; :class:`UnixToTcp` (in the test, outside) forwards that socket
to the gateway. A Unix socket is a file, and files are shared across network namespaces.

The CLI comes from scripts/claude-code.sh (npm, pinned) or ``CLAUDE_CODE_BIN``.
"""

from __future__ import annotations

import contextlib
import fcntl
import os
import shutil
import socket
import struct
import subprocess
import sys
import threading
from collections.abc import Callable
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
REQUIRE_ENV = "AWS_MASKER_REQUIRE_CLAUDE_CODE"
LOCAL_BIN = ROOT / ".run" / "claude-code" / "node_modules" / ".bin" / "claude"


def find_claude() -> str | None:
    for candidate in (os.environ.get("CLAUDE_CODE_BIN"), str(LOCAL_BIN), shutil.which("claude")):
        if candidate and os.access(candidate, os.X_OK):
            return candidate
    return None


def can_unshare() -> str | None:
    """None when ``unshare -n`` works here, else why not."""
    if shutil.which("unshare") is None:
        return "unshare (util-linux) is not installed"
    probe = subprocess.run(["unshare", "-n", "true"], capture_output=True, text=True, check=False)
    if probe.returncode != 0:
        return f"unshare -n is not permitted here ({probe.stderr.strip() or probe.returncode})"
    return None


def _pipe(a: socket.socket, b: socket.socket) -> None:
    try:
        while data := a.recv(1 << 16):
            b.sendall(data)
    except OSError:
        pass
    finally:
        with contextlib.suppress(OSError):
            b.shutdown(socket.SHUT_WR)


def _serve(listener: socket.socket, connect: Callable[[], socket.socket]) -> None:
    while True:
        try:
            client, _ = listener.accept()
        except OSError:
            return
        upstream = connect()
        for a, b in ((client, upstream), (upstream, client)):
            threading.Thread(target=_pipe, args=(a, b), daemon=True).start()


class UnixToTcp:
    """Outside the namespace: connections on a Unix socket, forwarded to a TCP address."""

    def __init__(self, path: Path, host: str, port: int) -> None:
        self.path = path
        self.listener = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self.listener.bind(str(path))
        self.listener.listen(64)
        threading.Thread(
            target=_serve, args=(self.listener, lambda: socket.create_connection((host, port))), daemon=True
        ).start()

    def close(self) -> None:
        self.listener.close()
        with contextlib.suppress(FileNotFoundError):
            self.path.unlink()


def _loopback_up() -> None:
    """``ip link set lo up``, without needing iproute2."""
    siocgifflags, siocsifflags, iff_up = 0x8913, 0x8914, 0x1
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        request = struct.pack("16sh", b"lo", 0)
        flags = struct.unpack("16sh", fcntl.ioctl(s, siocgifflags, request))[1]
        fcntl.ioctl(s, siocsifflags, struct.pack("16sh", b"lo", flags | iff_up))


def netns_main(argv: list[str]) -> int:
    """Inside the namespace: ``<unix path> <port> -- <command...>``: loopback up, the port forwarded
    to the Unix socket, then the command; its exit status is returned."""
    path, port, sep, *command = argv
    assert sep == "--" and command
    _loopback_up()
    listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    listener.bind(("127.0.0.1", int(port)))
    listener.listen(64)

    def connect() -> socket.socket:
        s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        s.connect(path)
        return s

    threading.Thread(target=_serve, args=(listener, connect), daemon=True).start()
    return subprocess.run(command, check=False).returncode


def run_isolated(
    claude: str, args: list[str], gateway_port: int, work: Path, env: dict[str, str], timeout: float = 120
) -> subprocess.CompletedProcess[str]:
    """``claude <args>`` in a namespace with loopback only, its API at the gateway."""
    sock = work / "gateway.sock"
    forwarder = UnixToTcp(sock, "127.0.0.1", gateway_port)
    port = 8000
    try:
        return subprocess.run(
            ["unshare", "-n", sys.executable, __file__, str(sock), str(port), "--", claude, *args],
            cwd=work,
            env={**env, "ANTHROPIC_BASE_URL": f"http://127.0.0.1:{port}"},
            capture_output=True,
            text=True,
            timeout=timeout,
            check=False,
        )
    finally:
        forwarder.close()


if __name__ == "__main__":
    sys.exit(netns_main(sys.argv[1:]))
