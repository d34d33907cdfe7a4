"""Free TCP ports on 127.0.0.1 for the processes a run starts.

Ports a caller needs together come from one ``free_ports`` call: its sockets stay bound until
all are chosen, so the kernel cannot hand the same port out twice (closed one by one, it can and
does, and two servers then race for one address). A port can still be taken by another program
before its user binds it; nothing short of binding it in that user closes that gap.
"""

from __future__ import annotations

import socket
from collections.abc import Iterable


def free_ports(count: int, avoid: Iterable[int] = ()) -> list[int]:
    """``count`` distinct ports nothing listens on now, none of them in ``avoid``."""
    avoid = set(avoid)
    held: list[socket.socket] = []
    ports: list[int] = []
    try:
        while len(ports) < count:
            sock = socket.socket()
            held.append(sock)  # held even when avoided, so the next bind gets another port
            sock.bind(("127.0.0.1", 0))
            port = int(sock.getsockname()[1])
            if port not in avoid:
                ports.append(port)
    finally:
        for sock in held:
            sock.close()
    return ports


def free_port(avoid: Iterable[int] = ()) -> int:
    """One free port, not in ``avoid``."""
    return free_ports(1, avoid)[0]
