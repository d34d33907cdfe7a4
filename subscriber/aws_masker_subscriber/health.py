"""The Redis connection's state, and the ``/health`` verdict drawn from it.

Unhealthy (503) when N consecutive connection attempts failed, or when the subscriber has been
without a subscription for longer than a threshold (counted from startup until the first one), or
while it shuts down. The failure count resets only when a SUBSCRIBE is confirmed.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

DISABLED = "disabled"
CONNECTING = "connecting"  # no subscription yet since startup
CONNECTED = "connected"
DISCONNECTED = "disconnected"  # had a subscription and lost it
STOPPING = "stopping"


@dataclass
class ConnectionState:
    status: str
    disconnected_since: float | None  # monotonic; None while connected
    consecutive_failures: int = 0
    last_error: str | None = None
    connected_since: float | None = None

    @classmethod
    def initial(cls, enabled: bool, now: float) -> ConnectionState:
        return cls(status=CONNECTING if enabled else DISABLED, disconnected_since=now if enabled else None)

    @property
    def connected(self) -> bool:
        return self.status == CONNECTED

    def subscribed(self, now: float) -> None:
        self.status = CONNECTED
        self.consecutive_failures = 0
        self.disconnected_since = None
        self.connected_since = now

    def attempt_failed(self, reason: str) -> None:
        self.consecutive_failures += 1
        self.last_error = reason

    def lost(self, now: float, reason: str) -> None:
        self.status = DISCONNECTED
        self.last_error = reason
        self.disconnected_since = now
        self.connected_since = None

    def stopping(self) -> None:
        self.status = STOPPING


def verdict(
    state: ConnectionState, *, now: float, max_failures: int, max_disconnected_s: float
) -> tuple[bool, dict[str, Any]]:
    """(healthy, body) for ``/health``."""
    body: dict[str, Any] = {"redis": state.status}
    reason: str | None = None
    if state.status == STOPPING:
        reason = "shutting down"
    elif state.status in (CONNECTING, DISCONNECTED):
        last = f"; last error: {state.last_error}" if state.last_error else ""
        down_for = now - state.disconnected_since if state.disconnected_since is not None else 0.0
        if state.consecutive_failures >= max_failures:
            reason = f"{state.consecutive_failures} consecutive failed connection attempts{last}"
        elif down_for >= max_disconnected_s:
            reason = f"no Redis subscription for {down_for:.1f} s (threshold {max_disconnected_s:g} s){last}"
        body["consecutive_failures"] = state.consecutive_failures
        body["disconnected_for_s"] = round(down_for, 3)
        if state.last_error:
            body["last_error"] = state.last_error
    if reason is not None:
        return False, {"status": "unhealthy", "reason": reason, **body}
    return True, {"status": "ok", **body}
