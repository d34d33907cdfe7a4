"""``aws-masker subscriber``: run the monitoring-event subscriber in the foreground.

Exit codes: 0 after a clean shutdown (SIGTERM/SIGINT), 1 if the HTTP endpoint cannot listen,
2 for a bad setting (one line on stderr).
"""

from __future__ import annotations

import asyncio
import os
import sys

from .settings import Settings, SettingsError, load_settings
from .subscriber import Subscriber

PROG = "aws-masker subscriber"


async def _serve(settings: Settings) -> int:
    subscriber = Subscriber(settings)
    try:
        await subscriber.run()
    except OSError as exc:
        where = f"{settings.listen_host}:{settings.listen_port}"
        print(f"{PROG}: cannot listen on {where}: {exc.strerror or exc}", file=sys.stderr)
        return 1
    return 0


def subscriber_main(argv: list[str] | None = None) -> int:
    try:
        settings = load_settings(sys.argv[1:] if argv is None else argv)
    except SettingsError as exc:
        print(f"{PROG}: error: {exc}", file=sys.stderr)
        return 2
    code = asyncio.run(_serve(settings))
    try:
        sys.stdout.flush()
    except BrokenPipeError:  # nobody reads our output any more: drop it, exit as we would have
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        os.close(devnull)
    return code
