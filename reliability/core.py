"""The suite's parts: scenario registry, the context a scenario runs in, and the report.

A scenario is a function ``fn(ctx) -> Outcome`` registered with :func:`scenario`. It runs
real processes (the ``tickerlake`` CLI, the dev Kafka broker, S3Proxy) in its own scratch
folder and reports counts; the runner adds its name, what was injected and its duration.
An exception inside a scenario is a failed scenario with the exception as the reason, so
a scenario that cannot pass stays in the report instead of being left out.
"""

from __future__ import annotations

import dataclasses
import os
import random
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

from tickerlake.config import Settings
from tickerlake.services import S3Endpoint

__all__ = [
    "REGISTRY",
    "Context",
    "Outcome",
    "Result",
    "Scenario",
    "Services",
    "scenario",
]


@dataclass
class Outcome:
    """What a scenario measured.

    Attributes:
        rows_in: Rows or events offered to the system.
        rows_out: Rows or events found where they should land.
        lost: Offered but not found (0 is the bar).
        duplicated: Found more than once (0 is the bar).
        errors: Errors the system reported on the way (expected ones included, e.g. the
            clear message of a refused write); shown in the report.
        passed: Whether every check held.
        reason: Why it failed (or a short note when it passed).
        details: Extra figures for the JSON report.
    """

    rows_in: int = 0
    rows_out: int = 0
    lost: int = 0
    duplicated: int = 0
    errors: list[str] = field(default_factory=list)
    passed: bool = True
    reason: str = ""
    details: dict[str, object] = field(default_factory=dict)

    def check(self, ok: bool, why: str) -> bool:
        """Record a failed check (the first reason is kept in front)."""
        if not ok:
            self.passed = False
            self.reason = f"{self.reason}; {why}" if self.reason else why
        return ok


@dataclass
class Result(Outcome):
    """One report row: the outcome plus the scenario's name, what was injected and its time."""

    name: str = ""
    injected: str = ""
    seconds: float = 0.0


@dataclass(frozen=True)
class Scenario:
    """A registered scenario.

    Attributes:
        name: Short unique name (``etl-concurrent-local``).
        injected: What the scenario does to the system, in a few words.
        fn: The scenario.
        short: Whether the short form (``make test``) runs it.
    """

    name: str
    injected: str
    fn: Callable[[Context], Outcome]
    short: bool


REGISTRY: list[Scenario] = []


def scenario(name: str, injected: str, short: bool = False) -> Callable[[Callable], Callable]:
    """Register a scenario function."""

    def register(fn: Callable[[Context], Outcome]) -> Callable[[Context], Outcome]:
        if any(s.name == name for s in REGISTRY):
            raise ValueError(f"duplicate scenario name {name!r}")
        REGISTRY.append(Scenario(name, injected, fn, short))
        return fn

    return register


class Services:
    """The dev Kafka broker and S3Proxy, started on first use and stopped at the end.

    Scenarios that stop or kill a service use :meth:`record` for its pid and
    :meth:`restart` to bring it back (on the same ports when they are still free).
    """

    def __init__(self, state_dir: Path) -> None:
        self.settings = Settings(
            lake=str(state_dir / "unused-lake"),
            state_dir=str(state_dir),
            bootstrap_servers="",
            s3_endpoint="",
        )
        self._started: set[str] = set()

    def kafka(self) -> str:
        """Bootstrap address of the dev broker (started if needed)."""
        from tickerlake.services import up

        (rec,) = up(self.settings, only="kafka")
        self._started.add("kafka")
        assert rec.endpoint is not None
        return rec.endpoint

    def s3(self, bucket: str = "reliability") -> S3Endpoint:
        """The S3Proxy endpoint (started if needed) with ``bucket`` created."""
        from tickerlake.services import dev_s3, up

        up(self.settings, only="s3")
        self._started.add("s3")
        endpoint = dev_s3(self.settings)
        assert endpoint is not None
        endpoint = dataclasses.replace(endpoint, bucket=bucket)
        endpoint.create_bucket()
        return endpoint

    def record(self, name: str) -> object:
        """The launcher's record (pid, ports, endpoint) of a running service."""
        from tickerlake.services.launcher import _locked_state

        with _locked_state(self.settings) as state:
            return state.records[name]

    def restart(self, name: str) -> None:
        """Start a stopped or killed service again (same ports when free)."""
        from tickerlake.services import up

        up(self.settings, only=name)

    def stop_all(self) -> None:
        from tickerlake.services import down

        if self._started:
            down(self.settings, only=sorted(self._started))
            self._started.clear()


@dataclass
class Context:
    """Where a scenario runs.

    Attributes:
        root: The scenario's own scratch folder (empty at start).
        short: Short form (fewer kill points, smaller inputs).
        seed: Seed for every random choice (kill points, inputs).
        services: Shared dev services.
    """

    root: Path
    short: bool
    seed: int
    services: Services

    @property
    def rng(self) -> random.Random:
        return random.Random(f"{self.seed}:{self.root.name}")

    def env(self, lake: str | Path, **extra: str) -> dict[str, str]:
        """Environment for a CLI run on ``lake``: the user's own TICKERLAKE_* values removed."""
        env = {k: v for k, v in os.environ.items() if not k.startswith("TICKERLAKE_")}
        env.update(
            {
                "TICKERLAKE_LAKE": str(lake),
                "TICKERLAKE_STATE_DIR": str(self.root / "state"),
                "TICKERLAKE_BOOTSTRAP_SERVERS": "",
                "TICKERLAKE_S3_ENDPOINT": "",
            }
        )
        env.update(extra)
        return env

    def s3_env(self, prefix: str) -> tuple[str, dict[str, str]]:
        """A fresh lake on the dev S3 server: its URI and the CLI environment for it."""
        ep = self.services.s3()
        lake = f"s3://{ep.bucket}/{self.root.name}/{prefix}"
        return lake, self.env(lake, **ep.env())

    def settings(self, env: dict[str, str]) -> Settings:
        """The Settings a CLI run with ``env`` would use (for checking results in-process)."""
        kw = {k.removeprefix("TICKERLAKE_").lower(): v for k, v in env.items() if k.startswith("TICKERLAKE_")}
        return Settings(**kw)

    def popen(self, args: list[str], env: dict[str, str], log: str) -> subprocess.Popen[bytes]:
        """Start ``tickerlake <args>`` in the background; output goes to ``<root>/<log>.log``."""
        out = open(self.root / f"{log}.log", "ab")  # noqa: SIM115 - owned by the child
        return subprocess.Popen(cli_command() + args, env=env, stdout=out, stderr=subprocess.STDOUT)

    def run(
        self, args: list[str], env: dict[str, str], timeout: float = 600
    ) -> subprocess.CompletedProcess[str]:
        """Run ``tickerlake <args>`` to completion (output captured)."""
        return subprocess.run(
            cli_command() + args, env=env, capture_output=True, text=True, timeout=timeout, check=False
        )


def cli_command() -> list[str]:
    """How to run the CLI of the installed package from this interpreter."""
    return [sys.executable, "-c", "from tickerlake.cli import main; main()"]


@dataclasses.dataclass
class Timer:
    """Elapsed seconds since creation."""

    started: float = dataclasses.field(default_factory=time.monotonic)

    @property
    def seconds(self) -> float:
        return round(time.monotonic() - self.started, 2)


def select(short: bool, only: list[str] | None) -> Iterator[Scenario]:
    """Scenarios to run, in registration order."""
    for s in REGISTRY:
        if only and not any(o in s.name for o in only):
            continue
        if short and not s.short:
            continue
        yield s
