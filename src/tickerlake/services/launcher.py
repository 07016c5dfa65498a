"""Start, stop and check the dev services; the one launcher behind the CLI, the demo and the tests.

What runs is recorded in ``<state dir>/services/state.json``: pid (with the kernel's start
time of that pid, so a recycled pid is never mistaken for ours), ports, endpoint and log
path. ``up`` reuses healthy recorded processes and restarts dead ones on their previous
ports when those are still free; ``down`` signals only the recorded pids.

When ``settings.bootstrap_servers`` names a cluster other than the recorded dev broker
(or ``settings.s3_endpoint`` another S3 store), that service is the user's own: nothing
is started or stopped for it, and ``status`` only checks that it answers.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import fcntl
import functools
import json
import os
import signal
import subprocess
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path

from tickerlake.config import Settings
from tickerlake.errors import TickerlakeError, UserError
from tickerlake.services import _proc
from tickerlake.services import kafka as kafka_svc
from tickerlake.services import postgres as pg_svc
from tickerlake.services import s3proxy as s3_svc
from tickerlake.services.jars import ensure_jars, java_executable, services_home

__all__ = [
    "DEFAULT_SERVICES",
    "SERVICES",
    "ServiceRecord",
    "ServiceStatus",
    "bootstrap_servers",
    "dev_s3",
    "down",
    "dump_state",
    "parse_state",
    "services_dir",
    "status",
    "up",
]

#: Service names, in start order.
SERVICES: tuple[str, ...] = ("kafka", "s3", "postgres")

#: What ``up`` starts when no service is named; PostgreSQL (a shared catalog) is asked for by name.
DEFAULT_SERVICES: tuple[str, ...] = ("kafka", "s3")

#: Each service's folder under the services folder.
_FOLDERS = {"kafka": "kafka", "s3": "s3proxy", "postgres": "postgres"}

_STATE_VERSION = 1

_TITLES = {"kafka": "Kafka", "s3": "S3Proxy", "postgres": "PostgreSQL"}


@dataclass(frozen=True, slots=True)
class ServiceRecord:
    """A service process this launcher started.

    Attributes:
        name: ``kafka`` or ``s3``.
        pid: Process id.
        start_ticks: The kernel's start time of that pid (see :func:`_proc.process_start_ticks`).
        ports: Named ports (``broker``/``controller`` or ``http``).
        endpoint: ``127.0.0.1:<port>`` for Kafka, ``http://127.0.0.1:<port>`` for S3.
        log_path: The process's log file.
        service_dir: Its folder (config, data, log).
        started_at: ISO timestamp of the start.
        startup_s: Seconds from launch until it answered.
    """

    name: str
    pid: int
    start_ticks: int
    ports: dict[str, int]
    endpoint: str
    log_path: str
    service_dir: str
    started_at: str
    startup_s: float


@dataclass(frozen=True, slots=True)
class ServiceStatus:
    """What one service is doing, as ``up``/``down``/``status`` report it.

    Attributes:
        name: ``kafka`` or ``s3``.
        state: ``running`` (answers), ``unhealthy`` (process alive, not answering),
            ``stopped``, ``external`` (the user's own, answers) or ``unreachable``
            (the user's own, not answering).
        action: What this call did: ``started``, ``reused``, ``stopped``, ``killed``, ``none``.
        endpoint: Where clients connect (Kafka bootstrap servers or S3 endpoint URL).
        pid: Process id when this launcher runs it.
        log_path: Its log file.
        startup_s: Seconds the last start took to answer.
        env: ``TICKERLAKE_*`` variables that point tickerlake at the service.
    """

    name: str
    state: str
    action: str = "none"
    endpoint: str | None = None
    pid: int | None = None
    log_path: str | None = None
    startup_s: float | None = None
    env: dict[str, str] = field(default_factory=dict)


def services_dir(settings: Settings) -> Path:
    """The folder with the state file and one sub-folder per service."""
    return settings.local_state_dir / "services"


def parse_state(text: str) -> tuple[dict[str, ServiceRecord], dict[str, dict[str, int]]]:
    """Read a state file's JSON into running records and the last ports of each service.

    Raises:
        TickerlakeError: If the text is not a state file this version understands.
    """
    try:
        raw = json.loads(text)
        if raw.get("version") != _STATE_VERSION:
            raise ValueError(f"version {raw.get('version')!r}")
        records = {name: ServiceRecord(**rec) for name, rec in raw.get("running", {}).items()}
        ports = {name: {k: int(v) for k, v in p.items()} for name, p in raw.get("ports", {}).items()}
    except (ValueError, TypeError, AttributeError) as e:
        raise TickerlakeError(
            f"unreadable services state file ({e}); delete it after stopping the services"
        ) from None
    return records, ports


def dump_state(records: dict[str, ServiceRecord], ports: dict[str, dict[str, int]]) -> str:
    """The JSON text of a state file."""
    doc = {
        "version": _STATE_VERSION,
        "running": {name: asdict(rec) for name, rec in sorted(records.items())},
        "ports": dict(sorted(ports.items())),
    }
    return json.dumps(doc, indent=2, sort_keys=True) + "\n"


class _State:
    """The state file of one state folder, read and written under an exclusive lock."""

    def __init__(self, folder: Path) -> None:
        self.folder = folder
        self.path = folder / "state.json"
        self.records: dict[str, ServiceRecord] = {}
        self.ports: dict[str, dict[str, int]] = {}

    def load(self) -> _State:
        if self.path.is_file():
            self.records, self.ports = parse_state(self.path.read_text())
        return self

    def save(self) -> None:
        self.folder.mkdir(parents=True, exist_ok=True)
        tmp = self.path.with_name(f".state-{os.getpid()}.json")
        tmp.write_text(dump_state(self.records, self.ports))
        os.replace(tmp, self.path)


@contextlib.contextmanager
def _locked_state(settings: Settings) -> Iterator[_State]:
    folder = services_dir(settings)
    folder.mkdir(parents=True, exist_ok=True)
    with open(folder / ".lock", "a+b") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        try:
            yield _State(folder).load()
        finally:
            fcntl.flock(lock, fcntl.LOCK_UN)


def _alive(rec: ServiceRecord) -> bool:
    return _proc.pid_alive(rec.pid, rec.start_ticks)


def _running(proc: subprocess.Popen[bytes]) -> bool:
    """Whether a child process launched here has not exited yet."""
    return proc.poll() is None


def _healthy(name: str, endpoint: str, settings: Settings | None = None, timeout_s: float = 3.0) -> bool:
    if name == "kafka":
        from tickerlake.stream._kafka import client_config

        conf = client_config(settings) if settings is not None else None
        return kafka_svc.broker_healthy(endpoint, timeout_s=timeout_s, client_config=conf)
    if name == "postgres":
        return pg_svc.postgres_healthy(_host_port(endpoint), timeout_s=timeout_s)
    return s3_svc.s3_healthy(endpoint, timeout_s=timeout_s)


def _host_port(endpoint: str) -> str:
    """``127.0.0.1:5432`` of an endpoint such as ``postgresql://127.0.0.1:5432/tickerlake``."""
    return endpoint.split("://", 1)[-1].split("@")[-1].split("/", 1)[0]


def _env(name: str, endpoint: str) -> dict[str, str]:
    if name == "kafka":
        return {"TICKERLAKE_BOOTSTRAP_SERVERS": endpoint}
    if name == "postgres":
        return {"TICKERLAKE_CATALOG_URI": pg_svc.catalog_uri(_host_port(endpoint))}
    return _s3_endpoint(endpoint).env()


def _s3_endpoint(endpoint_url: str) -> s3_svc.S3Endpoint:
    return s3_svc.S3Endpoint(
        endpoint_url=endpoint_url,
        access_key_id=s3_svc.DEV_ACCESS_KEY_ID,
        secret_access_key=s3_svc.DEV_SECRET_ACCESS_KEY,
        region=s3_svc.DEV_REGION,
        bucket=s3_svc.DEV_BUCKET,
    )


def _external_endpoint(name: str, settings: Settings, state: _State) -> str | None:
    """The user's own endpoint for ``name``, or None when the dev service is meant."""
    if name == "postgres":
        return _external_postgres(settings, state)
    configured = settings.bootstrap_servers if name == "kafka" else settings.s3_endpoint
    configured = configured.strip().rstrip("/")
    if not configured:
        return None
    rec = state.records.get(name)
    last = state.ports.get(name)
    ours = {rec.endpoint} if rec else set()
    if last:
        port = last["broker"] if name == "kafka" else last["http"]
        ours.add(f"127.0.0.1:{port}" if name == "kafka" else f"http://127.0.0.1:{port}")
    return None if configured in ours else configured


def _external_postgres(settings: Settings, state: _State) -> str | None:
    """The user's own PostgreSQL catalog (``host:port``), or None when the dev server is meant.

    Only a ``postgresql`` catalog URI names a server; a SQLite, Glue or REST catalog needs none.
    """
    uri = settings.catalog_uri.strip()
    if not uri.startswith("postgresql"):
        return None
    host_port = _host_port(uri)
    last = state.ports.get("postgres")
    ours = {f"127.0.0.1:{last['port']}", f"localhost:{last['port']}"} if last else set()
    return None if host_port in ours else host_port


def _external_status(name: str, endpoint: str, settings: Settings) -> ServiceStatus:
    ok = _healthy(name, endpoint, settings, timeout_s=5.0)
    return ServiceStatus(name=name, state="external" if ok else "unreachable", endpoint=endpoint)


def _record_status(rec: ServiceRecord, state: str, action: str) -> ServiceStatus:
    return ServiceStatus(
        name=rec.name,
        state=state,
        action=action,
        endpoint=rec.endpoint,
        pid=rec.pid,
        log_path=rec.log_path,
        startup_s=rec.startup_s,
        env=_env(rec.name, rec.endpoint),
    )


def _pick_ports(name: str, last: dict[str, int] | None) -> dict[str, int]:
    """The previous ports when all are still free (a stable address for the user), else new ones."""
    if last and all(_proc.port_free(p) for p in last.values()):
        return dict(last)
    if name == "kafka":
        broker = _proc.free_port()
        controller = _proc.free_port()
        while controller == broker:
            controller = _proc.free_port()
        return {"broker": broker, "controller": controller}
    if name == "postgres":
        return {"port": _proc.free_port()}
    return {"http": _proc.free_port()}


def _launch(
    name: str, home: Path, folder: Path, ports: dict[str, int]
) -> tuple[subprocess.Popen[bytes], str, Path]:
    if name == "kafka":
        proc = kafka_svc.start_kafka(home, folder, kafka_svc.KafkaPorts(ports["broker"], ports["controller"]))
        return proc, f"127.0.0.1:{ports['broker']}", folder / "kafka.log"
    if name == "postgres":
        proc = pg_svc.start_postgres(folder, ports["port"])
        endpoint = f"postgresql://127.0.0.1:{ports['port']}/{pg_svc.DEV_DATABASE}"
        return proc, endpoint, folder / "postgres.log"
    proc = s3_svc.start_s3proxy(home, folder, ports["http"])
    return proc, f"http://127.0.0.1:{ports['http']}", folder / "s3proxy.log"


def _wait(
    name: str, endpoint: str, proc_alive: Callable[[], bool], log_path: Path, timeout_s: float
) -> float:
    if name == "kafka":
        return kafka_svc.wait_until_healthy(endpoint, proc_alive, log_path, timeout_s)
    if name == "postgres":
        return pg_svc.wait_until_healthy(_host_port(endpoint), proc_alive, log_path, timeout_s)
    return s3_svc.wait_until_healthy(endpoint, proc_alive, log_path, timeout_s)


def _start(name: str, settings: Settings, state: _State, timeout_s: float) -> ServiceRecord:
    """Launch one service and wait until it answers; retried once on new ports if a port was taken."""
    home = services_home()
    folder = services_dir(settings) / _FOLDERS[name]
    last_error: TickerlakeError | None = None
    for attempt in range(2):
        ports = _pick_ports(name, state.ports.get(name) if attempt == 0 else None)
        t0 = time.monotonic()
        proc, endpoint, log_path = _launch(name, home, folder, ports)
        ticks = _proc.process_start_ticks(proc.pid)
        rec = ServiceRecord(
            name=name,
            pid=proc.pid,
            start_ticks=ticks if ticks is not None else 0,
            ports=ports,
            endpoint=endpoint,
            log_path=str(log_path),
            service_dir=str(folder),
            started_at=dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
            startup_s=0.0,
        )
        # Recorded before waiting, so `down` can stop it even if this call is interrupted.
        state.records[name] = rec
        state.ports[name] = ports
        state.save()
        try:
            _wait(name, endpoint, functools.partial(_running, proc), log_path, timeout_s)
        except TickerlakeError as e:
            last_error = e
            _proc.terminate(rec.pid, rec.start_ticks, timeout_s=10.0, sig=_stop_signal(name))
            del state.records[name]
            state.save()
            # Another program may have taken a port between choosing and binding it.
            if "bind" in str(e).lower() or "address already in use" in str(e).lower():
                continue
            raise

        rec = ServiceRecord(**{**asdict(rec), "startup_s": round(time.monotonic() - t0, 2)})
        state.records[name] = rec
        state.save()
        return rec
    assert last_error is not None
    raise last_error


def _stop_signal(name: str) -> int:
    """PostgreSQL's SIGTERM waits for every client to leave; SIGINT is its fast, clean shutdown."""
    return signal.SIGINT if name == "postgres" else signal.SIGTERM


def _in_use(settings: Settings, state: _State) -> list[str]:
    """The default services, plus PostgreSQL when it was started here or a catalog URI names one."""
    used = set(DEFAULT_SERVICES) | set(state.records)
    if _external_endpoint("postgres", settings, state):
        used.add("postgres")
    return [n for n in SERVICES if n in used]


def _selected(only: Sequence[str] | str | None, default: Sequence[str] = SERVICES) -> list[str]:
    if only is None:
        return list(default)
    names = [only] if isinstance(only, str) else list(only)
    unknown = [n for n in names if n not in SERVICES]
    if unknown:
        raise UserError(f"unknown service {unknown[0]!r}: choose from {', '.join(SERVICES)}")
    return [n for n in SERVICES if n in names]


def up(
    settings: Settings,
    only: Sequence[str] | str | None = None,
    timeout_s: float = 120.0,
    on_step: Callable[[str], None] | None = None,
) -> list[ServiceStatus]:
    """Make sure the dev services answer; start those that do not.

    Idempotent: a recorded process that is alive and answering is reused as it is.

    Args:
        settings: Runtime settings (state folder; the user's own Kafka/S3 if configured).
        only: A service name or names (``kafka``, ``s3``, ``postgres``); Kafka and S3 by default.
        timeout_s: How long each service may take to answer after launch.
        on_step: Called with a short description before each slow step (for progress).

    Returns:
        One status per selected service.

    Raises:
        TickerlakeError: If Java/Maven are missing, jars cannot be fetched, or a service
            does not come up (the message names its log).
    """
    names = _selected(only, DEFAULT_SERVICES)
    step = on_step or (lambda _msg: None)
    out: list[ServiceStatus] = []
    with _locked_state(settings) as state:
        for name in names:
            external = _external_endpoint(name, settings, state)
            if external:
                out.append(_external_status(name, external, settings))
                continue
            rec = state.records.get(name)
            if rec and _alive(rec):
                if not _healthy(name, rec.endpoint):
                    step(f"waiting for {name} (pid {rec.pid})")
                    _wait(name, rec.endpoint, functools.partial(_alive, rec), Path(rec.log_path), timeout_s)
                out.append(_record_status(rec, "running", "reused"))
                continue
            if name != "postgres":
                java_executable()
                step(f"fetching {name} jars with Maven (first run only)")
                ensure_jars([name])
            step(f"starting {_TITLES[name]}")
            rec = _start(name, settings, state, timeout_s)
            out.append(_record_status(rec, "running", "started"))
    return out


def down(
    settings: Settings, only: Sequence[str] | str | None = None, timeout_s: float = 30.0
) -> list[ServiceStatus]:
    """Stop the recorded dev services: SIGTERM, then SIGKILL after ``timeout_s``.

    Only pids in the state file are signalled, and only while they still belong to the
    process that was started. Data folders are kept, so the next ``up`` finds its topics
    and buckets again.
    """
    out: list[ServiceStatus] = []
    with _locked_state(settings) as state:
        for name in _selected(only, _in_use(settings, state)):
            rec = state.records.get(name)
            if rec is None:
                external = _external_endpoint(name, settings, state)
                out.append(
                    ServiceStatus(name=name, state="external" if external else "stopped", endpoint=external)
                )
                continue
            how = _proc.terminate(rec.pid, rec.start_ticks, timeout_s=timeout_s, sig=_stop_signal(name))
            action = {"terminated": "stopped", "killed": "killed"}.get(how, "none")
            del state.records[name]
            state.save()
            out.append(
                ServiceStatus(name=name, state="stopped", action=action, pid=rec.pid, log_path=rec.log_path)
            )
    return out


def status(settings: Settings, only: Sequence[str] | str | None = None) -> list[ServiceStatus]:
    """Whether each service is running and answering (read-only: starts and stops nothing)."""
    folder = services_dir(settings)
    state = _State(folder).load() if (folder / "state.json").is_file() else _State(folder)
    out: list[ServiceStatus] = []
    for name in _selected(only, _in_use(settings, state)):
        external = _external_endpoint(name, settings, state)
        if external:
            out.append(_external_status(name, external, settings))
            continue
        rec = state.records.get(name)
        if rec is None or not _alive(rec):
            out.append(
                ServiceStatus(name=name, state="stopped", log_path=rec.log_path if rec else None, pid=None)
            )
            continue
        out.append(_record_status(rec, "running" if _healthy(name, rec.endpoint) else "unhealthy", "none"))
    return out


def bootstrap_servers(settings: Settings) -> str:
    """The Kafka to talk to: the user's cluster if configured, else the running dev broker.

    Raises:
        UserError: If neither is there, saying how to get one.
    """
    if settings.bootstrap_servers.strip():
        return settings.bootstrap_servers.strip()
    folder = services_dir(settings)
    if (folder / "state.json").is_file():
        rec = _State(folder).load().records.get("kafka")
        if rec and _alive(rec):
            return rec.endpoint
    raise UserError(
        "no Kafka: run `tickerlake services up --only kafka`, "
        "or set TICKERLAKE_BOOTSTRAP_SERVERS to your cluster"
    )


def dev_s3(settings: Settings) -> s3_svc.S3Endpoint | None:
    """The running dev S3 server's endpoint and credentials, if it runs."""
    folder = services_dir(settings)
    if not (folder / "state.json").is_file():
        return None
    rec = _State(folder).load().records.get("s3")
    return _s3_endpoint(rec.endpoint) if rec and _alive(rec) else None
