"""Named crash points for the fault suite: ``TICKERLAKE_CRASH_AT=<point>[@<n>]`` kills the process there.

A crash at a random moment rarely lands in the narrow windows that matter most (between
a raw file write and the table commit, between a quarantine commit and the table
commit). The jobs call :func:`point` at those places; when the environment names the
point, the process sends itself SIGKILL on its ``n``-th passage (default the first), so
the suite can kill a real process exactly there. Unset, a point costs one dict lookup.
"""

from __future__ import annotations

import os
import signal

__all__ = ["ENV", "point"]

#: Environment variable naming the crash point.
ENV = "TICKERLAKE_CRASH_AT"

_passes: dict[str, int] = {}


def point(name: str) -> None:
    """Die here (SIGKILL, no clean-up) if ``TICKERLAKE_CRASH_AT`` names this point and pass."""
    wanted = os.environ.get(ENV)
    if not wanted:
        return
    target, _, nth = wanted.partition("@")
    if target != name:
        return
    _passes[name] = _passes.get(name, 0) + 1
    if _passes[name] >= int(nth or 1):
        os.kill(os.getpid(), signal.SIGKILL)
