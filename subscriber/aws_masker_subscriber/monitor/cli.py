"""``aws-masker monitor``: a live view of masking in the terminal (rich), or one plain snapshot.

    aws-masker monitor                    # full screen, refreshed every 1.5 s; q or Ctrl-C leaves
    aws-masker monitor --once             # one plain-text snapshot (for scripts and tests)

Sources: the subscriber's /health and /stats (``--subscriber``, default http://127.0.0.1:8090),
Redis INFO (``--redis-url``, else ``REDIS_URL``, else the subscriber's Redis when it has no
password) and psutil for the processes (see procs.py).
"""

from __future__ import annotations

import argparse
import contextlib
import os
import select
import sys
import time
from collections.abc import Iterator

from .render import LiveView, plain
from .sample import take_sample

PROG = "aws-masker monitor"
CPU_PRIME_S = 0.5  # --once: CPU use is measured over this long


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog=PROG, description=__doc__.split("\n\n")[0])
    p.add_argument(
        "--subscriber",
        default=os.environ.get("AWS_MASKER_SUBSCRIBER_URL") or "http://127.0.0.1:8090",
        metavar="URL",
        help="the subscriber's HTTP address [env AWS_MASKER_SUBSCRIBER_URL; default http://127.0.0.1:8090]",
    )
    p.add_argument(
        "--redis-url",
        default=os.environ.get("REDIS_URL") or None,
        metavar="URL",
        help="Redis for INFO [env REDIS_URL; default: the subscriber's, when it has no password]",
    )
    p.add_argument(
        "--token",
        default=os.environ.get("AWS_MASKER_SUBSCRIBER_TOKEN") or None,
        help="bearer token of the subscriber's HTTP endpoint [env AWS_MASKER_SUBSCRIBER_TOKEN]",
    )
    p.add_argument("--interval", type=float, default=1.5, metavar="SECONDS", help="refresh (default 1.5)")
    p.add_argument("--once", action="store_true", help="print one plain-text snapshot and exit")
    return p


@contextlib.contextmanager
def _keys() -> Iterator[bool]:
    """stdin in cbreak mode (no echo, one key at a time) while the view runs; yields whether it is a tty."""
    if not sys.stdin.isatty():
        yield False
        return
    import termios
    import tty

    fd = sys.stdin.fileno()
    saved = termios.tcgetattr(fd)
    try:
        tty.setcbreak(fd)
        yield True
    finally:
        termios.tcsetattr(fd, termios.TCSADRAIN, saved)


def _quit_pressed(timeout: float, tty: bool) -> bool:
    """Wait up to ``timeout`` for a key; True for q/Q."""
    if not tty:
        time.sleep(timeout)
        return False
    deadline = time.monotonic() + timeout
    while (left := deadline - time.monotonic()) > 0:
        ready, _, _ = select.select([sys.stdin], [], [], left)
        if ready and os.read(sys.stdin.fileno(), 1) in (b"q", b"Q"):
            return True
    return False


def _live(args: argparse.Namespace) -> int:
    from rich.console import Console
    from rich.live import Live

    view = LiveView()
    console = Console()
    with _keys() as tty, Live(console=console, screen=True, auto_refresh=False) as live:
        try:
            while True:
                sample = take_sample(args.subscriber, args.redis_url, args.token)
                live.update(view.render(sample, console.width), refresh=True)
                if _quit_pressed(args.interval, tty):
                    return 0
        except KeyboardInterrupt:
            return 0


def monitor_main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    if args.interval <= 0:
        print(f"{PROG}: error: --interval must be > 0", file=sys.stderr)
        return 2
    if args.once:
        take_sample(args.subscriber, args.redis_url, args.token)  # starts the CPU measurement
        time.sleep(CPU_PRIME_S)
        sample = take_sample(args.subscriber, args.redis_url, args.token)
        sys.stdout.write(plain(sample))
        return 0 if sample.stats is not None else 1
    return _live(args)
