"""Lake file operations on S3 retry a briefly unreachable store, with a bound, and only then."""

from __future__ import annotations

import errno
import os
import signal
import threading

import pytest

from tickerlake.config import Settings
from tickerlake.errors import TransientError
from tickerlake.lake.storage import LakeStorage, is_transient, retry_transient
from tickerlake.services import S3Endpoint, status

pytestmark = pytest.mark.integration


def _s3_pid(services_settings: Settings) -> int:
    (s3,) = status(services_settings, only="s3")
    assert s3.pid is not None
    return s3.pid


def test_only_store_outages_count_as_transient() -> None:
    assert is_transient(OSError("AWS Error NETWORK_CONNECTION during PutObject operation: curlCode: 7"))
    assert is_transient(TransientError("broker down"))
    assert not is_transient(OSError(errno.ENOSPC, "No space left on device"))
    assert not is_transient(FileNotFoundError("When reading information for key 'x': NETWORK_CONNECTION"))
    assert not is_transient(ValueError("curlCode"))


def test_write_and_read_ride_out_a_frozen_store(
    services_settings: Settings, s3_endpoint: S3Endpoint, tmp_path
) -> None:
    settings = s3_endpoint.settings(
        lake=f"s3://{s3_endpoint.bucket}/retry-{tmp_path.name}", state_dir=str(tmp_path)
    )
    storage = LakeStorage(settings)
    uri = storage.uri("raw", "x", "a.jsonl")
    storage.write_bytes(uri, b"warm-up\n")  # the client is connected before the freeze
    pid = _s3_pid(services_settings)
    os.kill(pid, signal.SIGSTOP)
    thaw = threading.Timer(8.0, os.kill, (pid, signal.SIGCONT))
    thaw.start()
    try:
        storage.write_bytes(uri, b"written while frozen\n")
        assert storage.read_bytes(uri) == b"written while frozen\n"
        assert [f.uri for f in storage.list_files(storage.uri("raw"))] == [uri]
    finally:
        thaw.cancel()
        os.kill(pid, signal.SIGCONT)


def test_retry_gives_up_with_a_one_line_error(
    services_settings: Settings, s3_endpoint: S3Endpoint, tmp_path
) -> None:
    settings = s3_endpoint.settings(
        lake=f"s3://{s3_endpoint.bucket}/giveup-{tmp_path.name}", state_dir=str(tmp_path)
    )
    storage = LakeStorage(settings)
    uri = storage.uri("f.txt")
    storage.write_bytes(uri, b"x")
    pid = _s3_pid(services_settings)
    os.kill(pid, signal.SIGSTOP)
    try:
        with pytest.raises(TransientError, match="did not answer for 1 s") as info:
            retry_transient(
                lambda: storage.fs.open_input_stream(storage.path(uri)).read(), "reading f", window_s=1
            )
    finally:
        os.kill(pid, signal.SIGCONT)
    assert "\n" not in str(info.value)
    assert storage.read_bytes(uri) == b"x"
