"""Small helpers for the local processes the stack and the local deployer start."""

from __future__ import annotations

import os
import signal
import socket

from sap_llm_release.polling import poll_until


def free_port() -> int:
    """A loopback TCP port nothing listens on now (the kernel's choice)."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def alive(pid: int) -> bool:
    """True while ``pid`` runs (a finished child of this process counts as gone)."""
    if pid <= 0:
        return False
    try:
        os.kill(pid, 0)
    except OSError:
        return False
    try:
        finished, _ = os.waitpid(pid, os.WNOHANG)
        return finished == 0
    except ChildProcessError:
        return True


def stop_group(pid: int, grace_s: float = 10.0) -> None:
    """SIGTERM the process group led by ``pid``; SIGKILL it if it outlives ``grace_s``."""
    try:
        os.killpg(pid, signal.SIGTERM)
    except ProcessLookupError:
        return
    if not poll_until(lambda: alive(pid), lambda running: not running, timeout_s=grace_s, interval_s=0.05):
        return
    try:
        os.killpg(pid, signal.SIGKILL)
    except ProcessLookupError:
        pass
