"""The log rate limit: at most ``limit`` log lines per 1 s window, and a count of the rest.

A window opens with the first line asked for after the previous window closed, and lasts
``window_s`` seconds. The caller closes windows with :meth:`LogRateLimiter.roll` (before asking, and
from a periodic tick, so a burst followed by silence is still summarised) and logs one summary line
per closed window that suppressed something. Only log lines are limited: the caller counts every
event in its statistics whatever this answers.
"""

from __future__ import annotations


class LogRateLimiter:
    def __init__(self, limit: int, window_s: float = 1.0) -> None:
        if limit < 0:
            raise ValueError("limit must be >= 0")
        self.limit = limit
        self.window_s = window_s
        self._start: float | None = None
        self._allowed = 0
        self._suppressed = 0
        self._closed_suppressed = 0  # suppressed in windows closed but not yet reported

    def roll(self, now: float) -> int:
        """Close the window if it has ended; return the suppressed count not yet reported (0: nothing)."""
        self._close_if_ended(now)
        reported, self._closed_suppressed = self._closed_suppressed, 0
        return reported

    def close(self) -> int:
        """Close the window whatever its age (at shutdown); return the suppressed count not yet reported."""
        self._close()
        reported, self._closed_suppressed = self._closed_suppressed, 0
        return reported

    def allow(self, now: float) -> bool:
        """May one more line be logged now? (Call :meth:`roll` first to report the previous window.)"""
        self._close_if_ended(now)
        if self._start is None:
            self._start = now
        if self._allowed < self.limit:
            self._allowed += 1
            return True
        self._suppressed += 1
        return False

    def _close_if_ended(self, now: float) -> None:
        if self._start is not None and now - self._start >= self.window_s:
            self._close()

    def _close(self) -> None:
        self._closed_suppressed += self._suppressed
        self._start = None
        self._allowed = 0
        self._suppressed = 0
