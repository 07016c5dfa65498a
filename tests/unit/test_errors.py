"""The error hierarchy and the one retry helper (with a fake clock: no real waiting)."""

from __future__ import annotations

import errno
import os

import pytest

from tickerlake.errors import (
    InputFileError,
    InternalError,
    NotFoundError,
    QueryError,
    QueryRefused,
    RefusedError,
    TickerlakeError,
    TransientError,
    UserError,
)
from tickerlake.lake.storage import RETRY_WINDOW_S, is_transient, retry_transient
from tickerlake.retry import first_line, is_transient_error, retry


class FakeClock:
    """Monotonic time that only moves when the code under test sleeps."""

    def __init__(self) -> None:
        self.now = 1000.0
        self.sleeps: list[float] = []

    def __call__(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        assert seconds >= 0
        self.sleeps.append(seconds)
        self.now += seconds


class Flaky:
    """Fails ``failures`` times with ``error``, then returns ``"ok"``."""

    def __init__(self, failures: int, error: BaseException | None = None) -> None:
        self.failures = failures
        self.error = error or TransientError("broker down")
        self.calls = 0

    def __call__(self) -> str:
        self.calls += 1
        if self.calls <= self.failures:
            raise self.error
        return "ok"


# --------------------------------------------------------------------------- hierarchy


@pytest.mark.parametrize(
    ("cls", "kind"),
    [
        (UserError, TickerlakeError),
        (NotFoundError, TickerlakeError),
        (RefusedError, TickerlakeError),
        (TransientError, TickerlakeError),
        (InternalError, TickerlakeError),
        (InputFileError, UserError),
        (QueryError, UserError),
        (QueryRefused, RefusedError),
    ],
)
def test_hierarchy(cls: type[BaseException], kind: type[BaseException]) -> None:
    assert issubclass(cls, kind)


def test_the_five_kinds_are_disjoint() -> None:
    kinds = (UserError, NotFoundError, RefusedError, TransientError, InternalError)
    for a in kinds:
        for b in kinds:
            assert a is b or not issubclass(a, b)


def test_input_file_error_keeps_its_fields() -> None:
    e = InputFileError("/d/a.csv", "missing columns", row=3)
    assert (str(e), e.path, e.problem, e.row) == (
        "/d/a.csv:3: missing columns",
        "/d/a.csv",
        "missing columns",
        3,
    )


def test_transient_error_hints() -> None:
    e = TransientError("down")
    assert (e.retry_after_s, e.exhausted) == (None, False)
    assert TransientError("slow", retry_after_s=2.0).retry_after_s == 2.0
    assert is_transient_error(e) and not is_transient_error(TransientError("x", exhausted=True))
    assert not is_transient_error(UserError("x"))


def test_first_line() -> None:
    assert first_line(ValueError("a\nb")) == "a"
    assert first_line(ValueError("")) == "ValueError"
    assert first_line(ValueError("x" * 300)) == "x" * 200


# --------------------------------------------------------------------------- retry


def test_success_needs_no_retry() -> None:
    clock = FakeClock()
    assert retry(lambda: 7, what="x", attempts=3, clock=clock, sleep=clock.sleep) == 7
    assert clock.sleeps == []


def test_transient_failures_are_retried_with_exponential_backoff() -> None:
    clock = FakeClock()
    fn = Flaky(3)
    seen: list[tuple[str, float]] = []
    out = retry(
        fn,
        what="x",
        attempts=5,
        base_delay_s=0.5,
        max_delay_s=10.0,
        jitter=0.0,
        clock=clock,
        sleep=clock.sleep,
        on_retry=lambda e, d: seen.append((str(e), d)),
    )
    assert out == "ok" and fn.calls == 4
    assert clock.sleeps == [0.5, 1.0, 2.0]
    assert seen == [("broker down", 0.5), ("broker down", 1.0), ("broker down", 2.0)]


def test_waits_are_capped() -> None:
    clock = FakeClock()
    retry(
        Flaky(6),
        what="x",
        attempts=10,
        base_delay_s=1.0,
        max_delay_s=3.0,
        jitter=0.0,
        clock=clock,
        sleep=clock.sleep,
    )
    assert clock.sleeps == [1.0, 2.0, 3.0, 3.0, 3.0, 3.0]


@pytest.mark.parametrize("r", [0.0, 0.25, 0.5, 0.999])
def test_jitter_shortens_each_wait_within_bounds(r: float) -> None:
    clock = FakeClock()
    retry(
        Flaky(4),
        what="x",
        attempts=5,
        base_delay_s=1.0,
        max_delay_s=4.0,
        jitter=0.5,
        clock=clock,
        sleep=clock.sleep,
        rand=lambda: r,
    )
    for n, slept in enumerate(clock.sleeps):
        full = min(4.0, 2.0**n)
        assert full * 0.5 <= slept <= full
        assert slept == pytest.approx(full * (1 - 0.5 * r))


def test_jitter_with_the_real_random_stays_in_bounds() -> None:
    clock = FakeClock()
    retry(Flaky(8), what="x", attempts=9, base_delay_s=0.1, max_delay_s=1.0, clock=clock, sleep=clock.sleep)
    assert all(min(1.0, 0.1 * 2**n) * 0.5 <= s <= min(1.0, 0.1 * 2**n) for n, s in enumerate(clock.sleeps))


def test_non_transient_errors_are_not_retried() -> None:
    clock = FakeClock()
    fn = Flaky(1, UserError("bad ticker"))
    with pytest.raises(UserError, match="bad ticker"):
        retry(fn, what="x", attempts=5, clock=clock, sleep=clock.sleep)
    assert fn.calls == 1 and clock.sleeps == []


def test_attempts_exhausted_is_one_transient_line() -> None:
    clock = FakeClock()
    fn = Flaky(100, TransientError("HTTP 503\nretry later"))
    with pytest.raises(TransientError) as info:
        retry(fn, what="yahoo: AAPL", attempts=3, jitter=0.0, clock=clock, sleep=clock.sleep)
    assert fn.calls == 3 and len(clock.sleeps) == 2
    message = str(info.value)
    assert message == "yahoo: AAPL: gave up after 3 attempts in 0.8 s (HTTP 503)"
    assert info.value.exhausted and isinstance(info.value.__cause__, TransientError)


def test_deadline_is_never_overslept() -> None:
    clock = FakeClock()
    fn = Flaky(100)
    with pytest.raises(TransientError, match=r"^load t: the store did not answer \(broker down\)$"):
        retry(
            fn,
            what="load t",
            deadline_s=10.0,
            base_delay_s=1.0,
            max_delay_s=4.0,
            jitter=0.0,
            gave_up="the store did not answer",
            clock=clock,
            sleep=clock.sleep,
        )
    # 1 + 2 + 4 = 7 s slept; the next 4 s wait would end past the 10 s deadline.
    assert clock.sleeps == [1.0, 2.0, 4.0] and clock.now - 1000.0 <= 10.0


def test_an_exhausted_error_is_not_retried_again() -> None:
    clock = FakeClock()
    inner = TransientError("x: gave up", exhausted=True)
    fn = Flaky(100, inner)
    with pytest.raises(TransientError) as info:
        retry(fn, what="outer", attempts=5, clock=clock, sleep=clock.sleep)
    assert info.value is inner and fn.calls == 1


def test_custom_classifier() -> None:
    clock = FakeClock()
    fn = Flaky(2, ConnectionResetError("reset"))
    assert (
        retry(
            fn,
            what="x",
            on=lambda e: isinstance(e, ConnectionError),
            attempts=3,
            clock=clock,
            sleep=clock.sleep,
        )
        == "ok"
    )


def test_unbounded_or_empty_retries_are_refused() -> None:
    with pytest.raises(ValueError, match="unbounded"):
        retry(lambda: 1, what="x")
    with pytest.raises(ValueError, match="at least 1"):
        retry(lambda: 1, what="x", attempts=0)


# --------------------------------------------------------------------------- the S3 classifier in storage


def test_store_outages_are_the_only_transient_os_errors() -> None:
    assert is_transient(OSError("AWS Error NETWORK_CONNECTION during PutObject operation: curlCode: 7"))
    assert is_transient(OSError("AWS Error SLOW_DOWN during GetObject"))
    assert is_transient(TransientError("broker down"))
    assert not is_transient(OSError(errno.ENOSPC, "No space left on device"))
    assert not is_transient(FileNotFoundError("key 'x': NETWORK_CONNECTION"))
    assert not is_transient(PermissionError("ACCESS_DENIED curlCode"))
    assert not is_transient(ValueError("curlCode"))


def test_retry_transient_uses_the_helper_with_a_window(monkeypatch: pytest.MonkeyPatch) -> None:
    clock = FakeClock()
    monkeypatch.setattr("tickerlake.retry.time.monotonic", clock)
    monkeypatch.setattr("tickerlake.retry.time.sleep", clock.sleep)
    fn = Flaky(100, OSError("AWS Error NETWORK_CONNECTION: curlCode: 7\nmore"))
    seen: list[BaseException] = []
    with pytest.raises(TransientError) as info:
        retry_transient(fn, "reading s3://b/k", window_s=3.0, on_retry=seen.append)
    assert str(info.value) == (
        "reading s3://b/k: the object store did not answer for 3 s (AWS Error NETWORK_CONNECTION: curlCode: 7)"
    )
    assert sum(clock.sleeps) <= 3.0 and len(seen) == len(clock.sleeps) >= 2
    assert RETRY_WINDOW_S == 60.0


def test_retry_transient_lets_final_errors_through() -> None:
    fn = Flaky(1, FileNotFoundError("no such key"))
    with pytest.raises(FileNotFoundError):
        retry_transient(fn, "reading")
    assert fn.calls == 1


@pytest.mark.parametrize("code", [errno.EROFS, errno.ENOSPC, errno.EACCES])
def test_a_read_only_or_full_lake_is_the_users_to_fix_not_an_internal_error(code: int) -> None:
    from tickerlake.errors import outcome_of

    assert outcome_of(OSError(code, os.strerror(code), "/lake/raw/x.csv")) == (2, 503)
    assert outcome_of(OSError(errno.EIO, "I/O error")) == (1, 500)
    assert outcome_of(ValueError("bug")) == (1, 500)
