"""``aws-masker gateway``: run the local Kong stand-in in the foreground."""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import signal
import sys
from pathlib import Path

from . import logs
from .address import DEFAULT_HOST, parse_listen
from .app import Gateway, GatewayError, create_gateway, run_site, shutdown_site
from .declarative import DeclarativeError
from .pluginserver import PluginInfoError
from .settings import SettingsError, load_settings

READY_TIMEOUT = 30.0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="aws-masker gateway",
        description="Run a local Kong 3.9 stand-in that drives the plugin server over Kong's protocol.",
    )
    parser.add_argument("--config", required=True, help="declarative kong.yml")
    parser.add_argument(
        "--listen",
        type=parse_listen,
        default=(DEFAULT_HOST, 8000),
        help=f"HOST:PORT (default {DEFAULT_HOST}:8000)",
    )
    parser.add_argument(
        "--prefix", help="Kong prefix (socket directory); default $KONG_PREFIX or /usr/local/kong"
    )
    parser.add_argument("--log-level", choices=sorted(logs.LEVELS), default="notice")
    return parser


async def _serve(gateway: Gateway, host: str, port: int) -> int:
    loop = asyncio.get_running_loop()
    stop = asyncio.Event()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    runner = None
    try:
        await gateway.start()
        await gateway.wait_ready(READY_TIMEOUT)
        runner, bound = await run_site(gateway.make_app(), host, port)
        routes = len(gateway.config.routes)
        names = ", ".join(gateway.plugin_set.names()) or "none"
        shown_host = f"[{host}]" if ":" in host else host
        print(
            f"aws-masker gateway ready on http://{shown_host}:{bound} ({routes} routes, plugins: {names})",
            flush=True,
        )
        await stop.wait()
        return 0
    except (TimeoutError, asyncio.TimeoutError, RuntimeError, OSError) as exc:
        print(f"aws-masker gateway: {exc}", file=sys.stderr)
        return 1
    finally:
        for sig in (signal.SIGINT, signal.SIGTERM):
            with contextlib.suppress(Exception):
                loop.remove_signal_handler(sig)
        if runner is not None:
            await shutdown_site(runner)
        await gateway.stop()


def gateway_main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    logs.configure(args.log_level)
    try:
        settings = load_settings(prefix=args.prefix)
    except SettingsError as exc:
        print(f"aws-masker gateway: {exc}", file=sys.stderr)
        return 1
    try:
        Path(settings.prefix).mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        print(f"aws-masker gateway: cannot use the prefix {settings.prefix}: {exc.strerror}", file=sys.stderr)
        return 1
    try:
        text = Path(args.config).read_text(encoding="utf-8")
    except OSError as exc:
        print(f"aws-masker gateway: cannot read {args.config}: {exc.strerror}", file=sys.stderr)
        return 1
    try:
        gateway = create_gateway(settings, text)
    except (DeclarativeError, PluginInfoError, SettingsError, GatewayError) as exc:
        print(f"aws-masker gateway: {exc}", file=sys.stderr)
        return 1
    host, port = args.listen
    return asyncio.run(_serve(gateway, host, port))
