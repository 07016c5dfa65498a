"""Static group-membership slots: a restarted sink takes its crashed predecessor's place at once.

With a ``group.instance.id`` the broker hands a returning member its partitions back
immediately instead of waiting for the old session to expire. The id must be stable across
a crash yet never shared by two live sinks: slot ``n`` of a group on a host is an exclusive
``flock`` on a file in the local state folder, which the kernel releases when the holder
dies, however it dies.
"""

from __future__ import annotations

import fcntl
import hashlib
import os
import re
import socket

from tickerlake.config import Settings
from tickerlake.errors import TickerlakeError

__all__ = ["MAX_SLOTS", "claim_slot"]

#: Sinks of one group on one host at most.
MAX_SLOTS = 1024


def claim_slot(settings: Settings, group: str, topic: str) -> tuple[str, int]:
    """The lowest free static-membership slot of ``group`` and ``topic`` on this host.

    The id names the host, the topic and the lake: the broker gives a returning static
    member its previous assignment without asking what it subscribes to now, so a sink of
    another topic (or another lake) in the same group must never reuse the id.

    Returns:
        The instance id (``tickerlake-<host>-<topic>-<lake>-<n>``) and the open file
        descriptor holding the lock (close it to release).

    Raises:
        TickerlakeError: If all ``MAX_SLOTS`` are held.
    """
    folder = settings.local_state_dir / "sink-slots"
    folder.mkdir(parents=True, exist_ok=True)
    tag = hashlib.sha256(f"{group}\0{topic}".encode()).hexdigest()[:12]
    lake = hashlib.sha256(settings.lake_uri.encode()).hexdigest()[:6]
    host = re.sub(r"[^A-Za-z0-9._-]", "_", socket.gethostname())
    name = re.sub(r"[^A-Za-z0-9._-]", "_", topic)[:60]
    for n in range(MAX_SLOTS):
        fd = os.open(folder / f"{tag}-{n}.lock", os.O_RDWR | os.O_CREAT, 0o644)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            os.close(fd)
            continue
        return f"tickerlake-{host}-{name}-{lake}-{n}", fd
    raise TickerlakeError(f"more than {MAX_SLOTS} sinks of group {group!r} on this host")
