"""The Java side of the dev services: finding Java and Maven, and fetching the jars once.

``services/pom.xml`` declares one Maven profile per service; each profile's runtime class
path is copied into ``services/lib/<name>/`` (git-ignored). A folder is re-fetched only
when it is missing or was fetched for a different ``pom.xml`` (a stamp file holds the
pom's hash), and Maven's own cache makes a re-fetch cheap. Run ``python -m
tickerlake.services.jars`` to fetch everything up front (``make`` does this before tests).
"""

from __future__ import annotations

import fcntl
import functools
import hashlib
import os
import re
import shutil
import subprocess
import sys
import time
from collections.abc import Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from pathlib import Path

from tickerlake.errors import TickerlakeError, UserError

__all__ = [
    "JAVA_MIN_MAJOR",
    "SERVICE_PROFILES",
    "classpath",
    "ensure_jars",
    "jars_ready",
    "java_executable",
    "lib_dir",
    "main",
    "maven_executable",
    "parse_java_major",
    "pom_digest",
    "services_home",
]

#: Kafka 4 brokers and S3Proxy 4 both need Java 17 or newer.
JAVA_MIN_MAJOR = 17

#: The Maven profile (and ``services/lib`` sub-folder) of each service.
SERVICE_PROFILES: dict[str, str] = {"kafka": "kafka", "s3": "s3proxy", "spark": "spark", "rest": "rest"}

_STAMP = ".pom-sha256"

_JAVA_HINT = (
    "install a Java {min}+ runtime (Debian/Ubuntu: apt-get install openjdk-17-jre-headless; "
    "macOS: brew install openjdk@17) or set JAVA_HOME"
)
_MVN_HINT = "install Apache Maven 3.8+ (Debian/Ubuntu: apt-get install maven; macOS: brew install maven)"


def services_home() -> Path:
    """The folder holding ``pom.xml`` and ``lib/``.

    Looked up in ``$TICKERLAKE_SERVICES_HOME``, then next to the source tree (an editable
    install), then in ``./services``.

    Raises:
        UserError: If no candidate holds a ``pom.xml``.
    """
    candidates = []
    if os.environ.get("TICKERLAKE_SERVICES_HOME"):
        candidates.append(Path(os.environ["TICKERLAKE_SERVICES_HOME"]).expanduser())
    candidates += [Path(__file__).resolve().parents[3] / "services", Path.cwd() / "services"]
    for c in candidates:
        if (c / "pom.xml").is_file():
            return c.resolve()
    raise UserError(
        "cannot find services/pom.xml: run from the tickerlake checkout or set TICKERLAKE_SERVICES_HOME"
    )


def lib_dir(service: str, home: Path | None = None) -> Path:
    """The jar folder of ``service`` ("kafka" or "s3")."""
    return (home or services_home()) / "lib" / SERVICE_PROFILES[service]


def classpath(service: str, home: Path | None = None) -> str:
    """A ``java -cp`` value with every jar of ``service`` (a wildcard the JVM expands)."""
    return str(lib_dir(service, home) / "*")


def pom_digest(pom_text: bytes) -> str:
    """The stamp that ties a fetched jar folder to one version of ``pom.xml``."""
    return hashlib.sha256(pom_text).hexdigest()


def jars_ready(service: str, home: Path | None = None) -> bool:
    """Whether ``service``'s jars are present and were fetched for the current ``pom.xml``."""
    home = home or services_home()
    stamp = lib_dir(service, home) / _STAMP
    try:
        return stamp.read_text().strip() == pom_digest((home / "pom.xml").read_bytes())
    except FileNotFoundError:
        return False


def parse_java_major(version_output: str) -> int | None:
    """The major Java version from ``java -version`` output.

    ``openjdk version "17.0.15" 2025-04-15`` gives 17; the old ``"1.8.0_381"`` style gives 8.
    """
    m = re.search(r'version "(\d+)(?:\.(\d+))?', version_output)
    if not m:
        return None
    major = int(m.group(1))
    if major == 1 and m.group(2):
        return int(m.group(2))
    return major


@functools.cache
def java_executable() -> str:
    """The ``java`` to run services with (``$JAVA_HOME/bin/java`` first), checked to be 17+.

    Raises:
        UserError: If Java is missing or too old, saying what to install.
    """
    java = None
    if os.environ.get("JAVA_HOME"):
        cand = Path(os.environ["JAVA_HOME"]) / "bin" / "java"
        if cand.is_file():
            java = str(cand)
    java = java or shutil.which("java")
    hint = _JAVA_HINT.format(min=JAVA_MIN_MAJOR)
    if not java:
        raise UserError(f"java not found; the dev Kafka broker and S3Proxy need it: {hint}")
    try:
        out = subprocess.run([java, "-version"], capture_output=True, text=True, timeout=60, check=False)
    except OSError as e:
        raise UserError(f"cannot run {java}: {e.strerror or e}; {hint}") from None
    major = parse_java_major(out.stderr + out.stdout)
    if major is None or major < JAVA_MIN_MAJOR:
        raise UserError(f"{java} is Java {major or '?'}, but Java {JAVA_MIN_MAJOR}+ is needed: {hint}")
    return java


def maven_executable() -> str:
    """The ``mvn`` command.

    Raises:
        UserError: If Maven is missing, saying what to install.
    """
    mvn = shutil.which("mvn")
    if not mvn:
        raise UserError(f"mvn not found; it fetches the dev services' jars on first use: {_MVN_HINT}")
    return mvn


@contextmanager
def _locked(path: Path) -> Iterator[None]:
    """An exclusive lock between processes (a CLI and a test run may fetch at once)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "a+b") as f:
        fcntl.flock(f, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(f, fcntl.LOCK_UN)


def _fetch(service: str, home: Path, mvn: str) -> float:
    """Fetch one service's jars into a scratch folder, then swap it into place."""
    t0 = time.monotonic()
    pom = home / "pom.xml"
    digest = pom_digest(pom.read_bytes())
    target = lib_dir(service, home)
    scratch = target.with_name(f".{target.name}.fetching")
    log = target.with_name(f"{target.name}-fetch.log")
    shutil.rmtree(scratch, ignore_errors=True)
    argv = [
        mvn,
        "-B",
        "-q",
        "-ntp",
        "-Dstyle.color=never",
        "-f",
        str(pom),
        "-P",
        SERVICE_PROFILES[service],
        "dependency:copy-dependencies",
        f"-DoutputDirectory={scratch}",
    ]
    with open(log, "wb") as out:
        proc = subprocess.run(argv, cwd=home, stdout=out, stderr=subprocess.STDOUT, check=False)
    if proc.returncode != 0 or not any(scratch.glob("*.jar")):
        shutil.rmtree(scratch, ignore_errors=True)
        errors = [ln for ln in log.read_text(errors="replace").splitlines() if "ERROR" in ln]
        first = errors[0].replace("[ERROR]", "").strip() if errors else f"exit code {proc.returncode}"
        raise TickerlakeError(f"fetching the {service} jars with Maven failed: {first} (full output: {log})")
    (scratch / _STAMP).write_text(digest + "\n")
    shutil.rmtree(target, ignore_errors=True)
    scratch.rename(target)
    return time.monotonic() - t0


def ensure_jars(services: Sequence[str] = ("kafka", "s3"), home: Path | None = None) -> dict[str, float]:
    """Make sure the jars of ``services`` are in ``services/lib``, fetching what is missing.

    Missing services are fetched in parallel; if that fails (two Maven processes share one
    local repository), each failed one is retried alone before giving up.

    Returns:
        Seconds spent fetching, per service that had to be fetched (empty when all were there).

    Raises:
        TickerlakeError: If Maven is missing or cannot fetch (a one-line reason and a log path).
    """
    home = home or services_home()
    if all(jars_ready(s, home) for s in services):
        return {}
    with _locked(home / "lib" / ".fetch.lock"):
        todo = [s for s in services if not jars_ready(s, home)]
        if not todo:
            return {}
        mvn = maven_executable()
        spent: dict[str, float] = {}
        failed: list[str] = []
        with ThreadPoolExecutor(max_workers=len(todo)) as pool:
            futures = {s: pool.submit(_fetch, s, home, mvn) for s in todo}
            for s, fut in futures.items():
                try:
                    spent[s] = fut.result()
                except TickerlakeError:
                    failed.append(s)
        for s in failed:
            spent[s] = _fetch(s, home, mvn)
        return spent


def _folder_mib(path: Path) -> float:
    return sum(p.stat().st_size for p in path.glob("*.jar")) / 2**20


def main(argv: Sequence[str] | None = None) -> int:
    """Fetch the jars of the given services (all by default) and print what is there."""
    args = list(sys.argv[1:] if argv is None else argv)
    services = args or list(SERVICE_PROFILES)
    unknown = [s for s in services if s not in SERVICE_PROFILES]
    if unknown:
        print(f"unknown service {unknown[0]!r}: choose from {', '.join(SERVICE_PROFILES)}", file=sys.stderr)
        return 2
    try:
        java_executable()
        spent = ensure_jars(services)
    except TickerlakeError as e:
        print(f"error: {e}", file=sys.stderr)
        return 1
    for s in services:
        d = lib_dir(s)
        how = f"fetched in {spent[s]:.1f} s" if s in spent else "already there"
        print(f"{s}: {len(list(d.glob('*.jar')))} jars, {_folder_mib(d):.0f} MiB in {d} ({how})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
