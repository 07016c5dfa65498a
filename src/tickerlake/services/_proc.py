"""Process plumbing for the dev services: free ports, spawning, liveness and stopping by pid.

A recorded pid is only trusted together with the process start time the kernel reports
for it, so a pid that the system has since handed to another program is never signalled.
"""

from __future__ import annotations

import contextlib
import os
import re
import signal
import socket
import subprocess
import time
from collections.abc import Sequence
from pathlib import Path

__all__ = [
    "first_error",
    "free_port",
    "pick_error",
    "pid_alive",
    "port_free",
    "process_start_ticks",
    "spawn",
    "tail",
    "terminate",
]


def free_port() -> int:
    """A TCP port on 127.0.0.1 that nothing listens on right now."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def port_free(port: int) -> bool:
    """Whether a server could listen on ``port`` on 127.0.0.1 right now.

    SO_REUSEADDR as the JVM's server sockets set it: right after a service is killed its
    port still has connections in TIME_WAIT, which refuse a plain bind but not a server's,
    and a restart must get the same address back or every client loses the service.
    """
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            s.bind(("127.0.0.1", port))
        except OSError:
            return False
        return True


def process_start_ticks(pid: int) -> int | None:
    """The process start time in clock ticks since boot (``/proc/<pid>/stat`` field 22).

    Returns:
        The start time, ``None`` if the process does not exist (or is a zombie), and 0
        where ``/proc`` is unavailable (then only the pid itself can be checked).
    """
    stat = Path(f"/proc/{pid}/stat")
    if not Path("/proc/self/stat").exists():
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            return None
        except PermissionError:
            return 0
        return 0
    try:
        raw = stat.read_text()
    except (FileNotFoundError, ProcessLookupError):
        return None
    # The command name (field 2) is in parentheses and may itself contain spaces.
    fields = raw[raw.rindex(")") + 2 :].split()
    if fields[0] in ("Z", "X"):
        return None
    return int(fields[19])


def pid_alive(pid: int, start_ticks: int) -> bool:
    """Whether ``pid`` is still the very process that was started at ``start_ticks``."""
    ticks = process_start_ticks(pid)
    if ticks is None:
        return False
    return ticks == start_ticks or 0 in (ticks, start_ticks)


def spawn(argv: Sequence[str], log_path: Path, cwd: Path) -> subprocess.Popen[bytes]:
    """Start a long-running service detached from the caller's terminal.

    The process gets its own session so that Ctrl-C in the shell that ran ``services up``
    does not reach it, and its output is appended to ``log_path``.
    """
    log_path.parent.mkdir(parents=True, exist_ok=True)
    with open(log_path, "ab") as log:
        log.write(f"\n===== {time.strftime('%Y-%m-%dT%H:%M:%S%z')} starting: {' '.join(argv)}\n".encode())
        log.flush()
        return subprocess.Popen(
            list(argv),
            cwd=cwd,
            stdin=subprocess.DEVNULL,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
            close_fds=True,
        )


def _reap(pid: int) -> None:
    """Collect the exit status if ``pid`` is our child, so it does not linger as a zombie."""
    with contextlib.suppress(ChildProcessError, OSError):
        os.waitpid(pid, os.WNOHANG)


def terminate(pid: int, start_ticks: int, timeout_s: float = 30.0, sig: int = signal.SIGTERM) -> str:
    """Stop one recorded process: ``sig`` (SIGTERM), then SIGKILL if it outlives ``timeout_s``.

    Args:
        pid: The recorded pid.
        start_ticks: Its recorded start time; a pid now owned by another process is left alone.
        timeout_s: Grace period for a clean shutdown (Kafka flushes and closes its logs).
        sig: The polite signal (PostgreSQL's fast shutdown is SIGINT; SIGTERM waits for clients).

    Returns:
        ``"not running"``, ``"terminated"`` or ``"killed"``.
    """
    if not pid_alive(pid, start_ticks):
        _reap(pid)
        return "not running"
    try:
        os.kill(pid, sig)
    except ProcessLookupError:
        return "not running"
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        _reap(pid)
        if not pid_alive(pid, start_ticks):
            return "terminated"
        time.sleep(0.1)
    with contextlib.suppress(ProcessLookupError):
        os.kill(pid, signal.SIGKILL)
    for _ in range(50):
        _reap(pid)
        if not pid_alive(pid, start_ticks):
            break
        time.sleep(0.1)
    return "killed"


def tail(path: Path, lines: int = 15) -> str:
    """The last ``lines`` lines of a log file (empty if it does not exist)."""
    try:
        with open(path, "rb") as f:
            f.seek(0, os.SEEK_END)
            size = f.tell()
            f.seek(max(0, size - 64 * 1024))
            text = f.read().decode("utf-8", "replace")
    except FileNotFoundError:
        return ""
    return "\n".join(text.splitlines()[-lines:])


_START_MARK = "===== "
_THROWABLE = re.compile(r"\b[\w.$]+(?:Exception|Error): \S")


def pick_error(log_text: str) -> str:
    """The most telling line of the latest run in a service log, for a one-line error.

    Only the text after the last start marker (written by :func:`spawn`) counts. Java
    prints the cause as ``SomeException: message`` somewhere in a stack trace; that line
    wins, then the first ERROR line, then the last line.
    """
    runs = log_text.split(_START_MARK)
    lines = runs[-1].splitlines()[1:] if len(runs) > 1 else log_text.splitlines()
    for pattern in (_THROWABLE, re.compile(r"\b(ERROR|FATAL)\b")):
        for ln in lines:
            if pattern.search(ln):
                return ln.strip()[:300]
    return (lines[-1].strip()[:300] if lines else "") or "no output"


def first_error(log_path: Path) -> str:
    """:func:`pick_error` of the end of a log file."""
    return pick_error(tail(log_path, 400))
