"""The pure parts of access control: secrets and hashes, the token store, the serve
policy, the write rule, and the token-bucket rate limiter (with a fake clock)."""

from __future__ import annotations

import json
import threading
from pathlib import Path

import pytest

from tickerlake.config import Settings
from tickerlake.errors import NotFoundError
from tickerlake.web.auth import (
    Principal,
    TokenError,
    TokenStore,
    describe_exposure,
    hash_token,
    is_loopback,
    needs_write,
    new_secret,
    serve_policy,
    verify,
)
from tickerlake.web.ratelimit import Decision, RateLimiter, TokenBucket


@pytest.fixture
def lake(tmp_path: Path) -> Settings:
    root = tmp_path / "lake"
    root.mkdir()
    return Settings(lake=str(root))


class FakeClock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


# --------------------------------------------------------------------------- secrets


def test_secrets_are_long_random_and_recognisable() -> None:
    a, b = new_secret(), new_secret()
    assert a != b
    assert a.startswith("tlk_") and len(a) >= 4 + 43
    assert all(c.isalnum() or c in "-_" for c in a)


def test_hash_is_sha256_hex_and_depends_on_every_character() -> None:
    assert hash_token("tlk_abc") == hash_token("tlk_abc")
    assert len(hash_token("tlk_abc")) == 64 and int(hash_token("tlk_abc"), 16) >= 0
    assert hash_token("tlk_abc") != hash_token("tlk_abd")
    # The known SHA-256 of "abc": the store must stay readable by other implementations.
    assert hash_token("abc") == "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"


def test_verify_accepts_the_secret_and_refuses_others(lake: Settings) -> None:
    store = TokenStore(lake)
    rec, secret = store.create("alice", "read")
    records = store.load()
    assert verify(records, secret).record == rec
    wrong = verify(records, secret + "x")
    assert wrong.record is None and wrong.reason == "unknown token"
    assert verify(records, "").record is None
    store.revoke("alice")
    revoked = verify(store.load(), secret)
    assert revoked.record is None and "revoked" in revoked.reason


# --------------------------------------------------------------------------- the store


def test_store_keeps_only_the_hash(lake: Settings) -> None:
    store = TokenStore(lake)
    rec, secret = store.create("ci-bot", "write")
    raw = Path(store.storage.path(store.uri)).read_text()
    assert secret not in raw
    doc = json.loads(raw)
    assert doc["tokens"]["ci-bot"]["sha256"] == hash_token(secret)
    assert doc["tokens"]["ci-bot"]["role"] == "write"
    assert store.uri.endswith("/catalog/access_tokens.json")
    assert rec.hint == secret[:8] and rec.active
    assert "sha256" not in rec.public()


def test_create_refuses_duplicates_bad_names_and_roles(lake: Settings) -> None:
    store = TokenStore(lake)
    store.create("alice", "read")
    with pytest.raises(TokenError, match="exists"):
        store.create("alice", "write")
    with pytest.raises(TokenError, match="bad token name"):
        store.create("a b", "read")
    with pytest.raises(TokenError, match="bad token name"):
        store.create("-x", "read")
    with pytest.raises(TokenError, match="unknown role"):
        store.create("bob", "admin")
    assert set(store.load()) == {"alice"}


def test_a_revoked_name_can_be_reused_and_the_old_secret_stays_dead(lake: Settings) -> None:
    store = TokenStore(lake)
    _, old = store.create("alice", "read")
    store.revoke("alice")
    _, new = store.create("alice", "write")
    records = store.load()
    assert verify(records, old).record is None
    rec = verify(records, new).record
    assert rec is not None and rec.role == "write"


def test_revoke_unknown_name_lists_the_known_ones(lake: Settings) -> None:
    store = TokenStore(lake)
    store.create("alice", "read")
    with pytest.raises(TokenError, match=r"no token named 'bob' \(tokens: alice\)") as info:
        store.revoke("bob")
    assert isinstance(info.value, NotFoundError)  # exit code 3, HTTP 404


def test_revoke_twice_keeps_the_first_date(lake: Settings) -> None:
    store = TokenStore(lake)
    store.create("alice", "read")
    first = store.revoke("alice")
    again = store.revoke("alice")
    assert not first.active and again.revoked_at == first.revoked_at


def test_no_lake_no_store(tmp_path: Path) -> None:
    store = TokenStore(Settings(lake=str(tmp_path / "typo")))
    assert store.load() == {}
    with pytest.raises(TokenError, match="no lake at"):
        store.create("alice", "read")
    assert not (tmp_path / "typo").exists()


def test_a_corrupt_store_is_a_clear_error(lake: Settings) -> None:
    store = TokenStore(lake)
    path = Path(store.storage.path(store.uri))
    path.parent.mkdir(parents=True)
    path.write_text("{not json")
    with pytest.raises(TokenError, match="not a valid token store"):
        store.load()


def test_concurrent_creates_lose_nothing(lake: Settings) -> None:
    errors: list[BaseException] = []

    def create(i: int) -> None:
        try:
            # One store per thread, like separate commands.
            TokenStore(lake).create(f"t{i}", "read")
        except BaseException as e:  # pragma: no cover - reported below
            errors.append(e)

    threads = [threading.Thread(target=create, args=(i,)) for i in range(16)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == []
    assert set(TokenStore(lake).load()) == {f"t{i}" for i in range(16)}
    assert not Path(TokenStore(lake).storage.path(TokenStore(lake).uri) + ".lock").exists()


def test_cached_records_see_another_writer(lake: Settings) -> None:
    server_view = TokenStore(lake)
    assert server_view.records() == {}
    _, secret = TokenStore(lake).create("alice", "read")
    assert verify(server_view.records(), secret).record is not None
    TokenStore(lake).revoke("alice")
    assert verify(server_view.records(), secret).record is None


# --------------------------------------------------------------------------- serve policy


@pytest.mark.parametrize(
    ("host", "loopback"),
    [
        ("127.0.0.1", True),
        ("localhost", True),
        ("LOCALHOST", True),
        ("::1", True),
        ("[::1]", True),
        ("127.0.0.2", True),
        ("0.0.0.0", False),
        ("::", False),
        ("192.168.1.10", False),
        ("example.com", False),
        ("", False),
    ],
)
def test_is_loopback(host: str, loopback: bool) -> None:
    assert is_loopback(host) is loopback


def test_serve_policy_refuses_exposed_hosts_without_an_active_token(lake: Settings) -> None:
    store = TokenStore(lake)
    with pytest.raises(TokenError, match=r"^refusing to serve on 0\.0\.0\.0: .*tokens create") as err:
        serve_policy("0.0.0.0", store.load())
    assert "\n" not in str(err.value)
    store.create("alice", "read")
    store.revoke("alice")
    # A revoked token protects nothing: still refused.
    with pytest.raises(TokenError, match="refusing"):
        serve_policy("0.0.0.0", store.load())
    store.create("bob", "write")
    policy = serve_policy("0.0.0.0", store.load())
    assert policy.enforced and not policy.loopback and policy.active == {"read": 0, "write": 1}


def test_serve_policy_on_loopback(lake: Settings) -> None:
    store = TokenStore(lake)
    open_policy = serve_policy("127.0.0.1", store.load())
    assert open_policy.loopback and not open_policy.enforced
    store.create("alice", "read")
    store.revoke("alice")
    # Revoking the last token never reopens the lake.
    assert serve_policy("127.0.0.1", store.load()).enforced


def test_describe_exposure_names_the_limits(lake: Settings) -> None:
    settings = Settings(lake=lake.lake, sql_rate_per_s=2.5, sql_burst=7, query_row_limit=123)
    store = TokenStore(settings)
    store.create("alice", "read")
    info = describe_exposure(settings, serve_policy("0.0.0.0", store.load()))
    assert "2.5/s, burst 7" in info["sql"] and "123 rows" in info["sql"]
    assert info["access"] == "bearer token required (1 read, 0 write)"
    assert "write role only" in info["writes"]
    open_info = describe_exposure(settings, serve_policy("127.0.0.1", {}))
    assert open_info["access"].startswith("open to every local client")


# --------------------------------------------------------------------------- roles


@pytest.mark.parametrize(
    ("method", "path", "write"),
    [
        ("GET", "/api/meta", False),
        ("HEAD", "/", False),
        ("OPTIONS", "/api/query", False),
        ("POST", "/api/query", False),
        ("POST", "/api/query/csv", False),
        ("POST", "/login", False),
        ("POST", "/api/saved", True),
        ("PUT", "/api/query", True),
        ("DELETE", "/api/anything", True),
        ("patch", "/x", True),
    ],
)
def test_needs_write(method: str, path: str, write: bool) -> None:
    assert needs_write(method, path) is write


def test_roles_rank() -> None:
    reader = Principal("r", "read", "1.2.3.4")
    writer = Principal("w", "write", "1.2.3.4")
    assert reader.can("read") and not reader.can("write")
    assert writer.can("read") and writer.can("write")
    assert Principal("x", "bogus", "c").can("read") is False
    assert reader.limit_key == "token:r"
    assert Principal(None, "write", "1.2.3.4").limit_key == "client:1.2.3.4"


# --------------------------------------------------------------------------- rate limiter


def test_bucket_allows_the_burst_then_the_rate() -> None:
    bucket = TokenBucket(rate=2.0, burst=3, tokens=3, stamp=0.0)
    assert [bucket.take(0.0) for _ in range(3)] == [0.0, 0.0, 0.0]
    assert bucket.take(0.0) == pytest.approx(0.5)
    assert bucket.take(0.25) == pytest.approx(0.25)
    assert bucket.take(0.5) == 0.0
    # A long quiet spell refills to the burst, not beyond.
    bucket.refill(1000.0)
    assert bucket.tokens == 3


def test_bucket_ignores_a_clock_going_backwards() -> None:
    bucket = TokenBucket(rate=1.0, burst=1, tokens=0, stamp=10.0)
    assert bucket.take(5.0) == pytest.approx(1.0)
    assert bucket.stamp == 10.0


def test_limiter_keys_are_independent() -> None:
    clock = FakeClock()
    limiter = RateLimiter(rate=1.0, burst=2, clock=clock)
    assert limiter.acquire("a").allowed and limiter.acquire("a").allowed
    refused = limiter.acquire("a")
    assert not refused.allowed and refused.retry_after_s == pytest.approx(1.0)
    assert refused.retry_after_header == "1"
    assert limiter.acquire("b").allowed
    clock.now += 1.0
    assert limiter.acquire("a").allowed
    assert not limiter.acquire("a").allowed


def test_retry_after_is_whole_seconds_at_least_one() -> None:
    assert Decision(False, 0.01).retry_after_header == "1"
    assert Decision(False, 2.2).retry_after_header == "3"


def test_zero_rate_disables_the_limit() -> None:
    limiter = RateLimiter(rate=0, burst=1)
    assert not limiter.enabled
    assert all(limiter.acquire("a").allowed for _ in range(1000))


def test_limiter_memory_is_bounded_and_fair() -> None:
    clock = FakeClock()
    limiter = RateLimiter(rate=1.0, burst=1, clock=clock, max_clients=10)
    for i in range(100):
        assert limiter.acquire(f"c{i}").allowed
    assert len(limiter) <= 10
    # The most recent client is still remembered as having spent its token.
    assert not limiter.acquire("c99").allowed
    clock.now += 5
    for i in range(100, 120):
        limiter.acquire(f"c{i}")
    assert len(limiter) <= 10
