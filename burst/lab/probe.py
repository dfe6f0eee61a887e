"""Reach a TCP port inside one of the lab's network namespaces from this process.

The root namespace has no address on a lab subnet (see docs/lab.md), so a probe runs
in a short-lived thread that first moves itself into the lab's hub namespace
(setns(2) changes the namespace of the calling thread only); the socket it opens
belongs to that namespace. No subprocess, no address in the root namespace.
"""

from __future__ import annotations

import ctypes
import os
import socket
import threading

from burst.lab.system import NETNS_DIR

_CLONE_NEWNET = 0x40000000
_libc = ctypes.CDLL(None, use_errno=True)


def tcp_banner(netns: str, address: str, port: int, timeout: float = 1.0, read: bool = True) -> bytes | None:
    """Connect to `address:port` from inside `netns`; return the first bytes the
    server sends (b"" if `read` is False or it sent nothing), or None if unreachable."""
    result: list[bytes | None] = [None]

    def probe() -> None:
        fd = os.open(NETNS_DIR / netns, os.O_RDONLY)
        try:
            if _libc.setns(fd, _CLONE_NEWNET) != 0:
                return
        finally:
            os.close(fd)
        try:
            with socket.create_connection((address, port), timeout=timeout) as sock:
                result[0] = sock.recv(64) if read else b""
        except OSError:
            pass

    thread = threading.Thread(target=probe, name=f"probe-{netns}", daemon=True)
    thread.start()
    thread.join(timeout * 2 + 1)
    return result[0]
