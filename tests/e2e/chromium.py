"""Real headless Chromium (Debian's ``chromium``) driven over the DevTools protocol with aiohttp's
websocket client: open a page, evaluate JavaScript in it, take a screenshot. No Playwright, no driver.

Absent Chromium skips the tests that need it, except under ``AWS_MASKER_REQUIRE_CHROMIUM=1`` (CI),
where it is a failure.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import itertools
import json
import os
import re
import shutil
import signal
import subprocess
import tempfile
from collections.abc import AsyncIterator
from typing import Any

import aiohttp
import pytest

REQUIRE_ENV = "AWS_MASKER_REQUIRE_CHROMIUM"
NAMES = ("chromium", "chromium-browser")
DEVTOOLS = re.compile(r"DevTools listening on (ws://\S+)")
_DRAINS: set[asyncio.Future[None]] = set()


def chromium_binary() -> str:
    """The Chromium executable, or skip (fail under ``AWS_MASKER_REQUIRE_CHROMIUM=1``)."""
    for name in NAMES:
        found = shutil.which(name)
        if found:
            return found
    reason = "chromium is not installed (scripts/system-deps.sh test installs Debian's chromium)"
    if os.environ.get(REQUIRE_ENV) == "1":
        pytest.fail(f"{reason}; {REQUIRE_ENV}=1 requires it")
    pytest.skip(reason)


class Page:
    """One tab, attached through the browser's DevTools websocket (flat session mode)."""

    def __init__(self, ws: aiohttp.ClientWebSocketResponse) -> None:
        self.ws = ws
        self.session: str | None = None
        self._ids = itertools.count(1)

    async def send(self, method: str, params: dict[str, Any] | None = None, session: bool = True) -> Any:
        msg_id = next(self._ids)
        message: dict[str, Any] = {"id": msg_id, "method": method, "params": params or {}}
        if session and self.session:
            message["sessionId"] = self.session
        await self.ws.send_str(json.dumps(message))
        while True:
            reply = json.loads((await self.ws.receive(timeout=30)).data)
            if reply.get("id") == msg_id:
                if "error" in reply:
                    raise RuntimeError(f"{method}: {reply['error']}")
                return reply.get("result", {})

    async def evaluate(self, expression: str) -> Any:
        result = await self.send("Runtime.evaluate", {"expression": expression, "returnByValue": True})
        if "exceptionDetails" in result:
            raise RuntimeError(f"page script failed: {result['exceptionDetails'].get('text')}")
        return result["result"].get("value")

    async def wait_for(self, expression: str, timeout: float = 20.0, what: str = "") -> Any:
        """Poll ``expression`` until it is truthy; returns its value."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        while True:
            try:
                value = await self.evaluate(expression)
            except RuntimeError:  # the page is still loading (no body yet)
                value = None
            if value:
                return value
            if loop.time() > deadline:
                raise AssertionError(f"the page never satisfied: {what or expression}")
            await asyncio.sleep(0.1)

    async def screenshot(self) -> bytes:
        result = await self.send("Page.captureScreenshot", {"format": "png", "captureBeyondViewport": True})
        return base64.b64decode(result["data"])


@contextlib.asynccontextmanager
async def open_page(
    url: str, width: int = 1280, height: int = 900, javascript: bool = True
) -> AsyncIterator[Page]:
    """Start headless Chromium, open ``url`` in a tab (the page's own scripts off unless
    ``javascript``), yield the tab; Chromium is killed afterwards."""
    binary = chromium_binary()
    # (a helper process that still has a file open there must not fail the test on the way out)
    with tempfile.TemporaryDirectory(prefix="aws-masker-chromium-", ignore_cleanup_errors=True) as profile:
        argv = [
            binary,
            "--headless",
            "--disable-gpu",
            "--no-first-run",
            "--no-default-browser-check",
            "--disable-extensions",
            "--disable-background-networking",
            "--hide-scrollbars",
            f"--window-size={width},{height}",
            f"--user-data-dir={profile}",
            "--remote-debugging-port=0",
            "about:blank",
        ]
        if os.geteuid() == 0:
            argv.insert(1, "--no-sandbox")  # Chromium's sandbox refuses to run as root (CI)
        proc = await asyncio.create_subprocess_exec(
            *argv, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, start_new_session=True
        )
        try:
            ws_url = await asyncio.wait_for(_devtools_url(proc), 60)
            async with aiohttp.ClientSession() as http, http.ws_connect(ws_url, max_msg_size=0) as ws:
                page = Page(ws)
                target = await page.send("Target.createTarget", {"url": "about:blank"}, session=False)
                attached = await page.send(
                    "Target.attachToTarget", {"targetId": target["targetId"], "flatten": True}, session=False
                )
                page.session = attached["sessionId"]
                metrics = {"width": width, "height": height, "deviceScaleFactor": 1, "mobile": False}
                await page.send("Emulation.setDeviceMetricsOverride", metrics)
                if not javascript:
                    await page.send("Emulation.setScriptExecutionDisabled", {"value": True})
                await page.send("Page.navigate", {"url": url})
                yield page
        finally:
            # the whole process group: Chromium's helpers (zygote, renderers) outlive a killed parent
            # and go on writing into the profile while it is being removed
            with contextlib.suppress(ProcessLookupError):
                os.killpg(proc.pid, signal.SIGKILL)
            await proc.wait()


async def _devtools_url(proc: asyncio.subprocess.Process) -> str:
    assert proc.stderr is not None
    seen = []
    while True:
        line = (await proc.stderr.readline()).decode(errors="replace")
        if not line:
            raise RuntimeError("chromium exited before listening:\n" + "".join(seen[-20:]))
        seen.append(line)
        match = DEVTOOLS.search(line)
        if match:
            # keep draining stderr so Chromium never blocks on a full pipe
            drain = asyncio.ensure_future(_drain(proc))
            _DRAINS.add(drain)
            drain.add_done_callback(_DRAINS.discard)
            return match.group(1)


async def _drain(proc: asyncio.subprocess.Process) -> None:
    assert proc.stderr is not None
    with contextlib.suppress(Exception):
        while await proc.stderr.read(65536):
            pass
