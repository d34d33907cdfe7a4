"""Children that do not outlive their parent.

On Linux a child started with ``preexec_fn=die_with_parent`` asks the kernel for a SIGTERM when
the thread that started it dies, so a gateway or ``aws-masker up`` that is killed with SIGKILL
or crashes leaves no plugin server, redis-server or stub running. The setting survives ``exec``.
Elsewhere ``die_with_parent`` does nothing.
"""

from __future__ import annotations

import ctypes
import os
import signal
import sys
from collections.abc import Callable

PR_SET_PDEATHSIG = 1


def _prctl() -> Callable[..., int] | None:
    if not sys.platform.startswith("linux"):
        return None
    try:
        return ctypes.CDLL(None, use_errno=True).prctl  # type: ignore[no-any-return]
    except (OSError, AttributeError):
        return None


_PRCTL = _prctl()


def die_with_parent() -> None:
    """For ``preexec_fn``: runs in the child between fork and exec."""
    if _PRCTL is None:
        return
    parent = os.getppid()
    _PRCTL(PR_SET_PDEATHSIG, signal.SIGTERM)
    if os.getppid() != parent:  # the parent died before the request was in place
        os._exit(1)
