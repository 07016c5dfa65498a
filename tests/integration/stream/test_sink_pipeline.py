"""The sink's commit thread on the real broker and catalog: batch N+1 is decoded while N is
committed, commits land in order, and a failed commit stops the sink with nothing after it
committed (a restart then loads every record exactly once)."""

from __future__ import annotations

import threading
import time

import numpy as np
import pytest
from confluent_kafka import Producer

from tickerlake.errors import TransientError
from tickerlake.stream import _kafka
from tickerlake.stream.schema import encode_ticks
from tickerlake.stream.sink import SinkOptions, StreamSink, run_sink
from tickerlake.stream.sink.batch import PartitionBatch

pytestmark = pytest.mark.integration

T0 = 1_577_975_400_000_000  # 2020-01-02T14:30:00Z


def _topic(kit, prefix: str, n: int) -> str:
    topic = kit.new_topic(prefix)
    _kafka.ensure_topic(_kafka.admin_client(kit.settings, kit.bootstrap), topic, 1, kit.bootstrap)
    seq = np.arange(n)
    values = encode_ticks(
        ["AAPL"] * n, T0 + seq * 1_000_000, np.full(n, 10.5), np.ones(n, dtype=np.int64), seq
    )
    producer = Producer({"bootstrap.servers": kit.bootstrap, "enable.idempotence": True})
    for v in values:
        producer.produce(topic, v, b"AAPL")
    assert producer.flush(30) == 0
    return topic


def _options(kit, topic: str) -> SinkOptions:
    return SinkOptions(topic=topic, bootstrap=kit.bootstrap, group=f"{topic}-g", max_records=100, once=True)


def test_the_next_batch_is_decoded_while_one_commits_and_commits_stay_in_order(kit):
    topic = _topic(kit, "pipe", 600)
    sink = StreamSink(kit.settings, _options(kit, topic))
    events: list[tuple[str, int]] = []
    lock = threading.Lock()
    decode, commit_batch, commit = sink._decode, sink._commit_batch, sink.committer.commit_durably

    def decoding(p: int, messages: list) -> PartitionBatch | None:
        with lock:
            events.append(("decode", _kafka.offset_of(messages[0])))
        return decode(p, messages)

    def committing(parts: list[PartitionBatch]) -> list[PartitionBatch]:
        with lock:
            events.append(("commit", parts[0].first))
        done = commit_batch(parts)
        with lock:
            events.append(("committed", parts[0].first))
        return done

    def slow(parts: list[PartitionBatch]) -> list[PartitionBatch]:
        time.sleep(0.3)  # a slow store: the loop goes on reading meanwhile
        return commit(parts)

    sink._decode = decoding  # type: ignore[method-assign]
    sink._commit_batch = committing  # type: ignore[method-assign]
    sink.committer.commit_durably = slow  # type: ignore[method-assign]
    report = sink.run(handle_signals=False)
    assert report.complete and report.offsets == {0: 600} and report.records == 600
    starts = [o for kind, o in events if kind == "commit"]
    assert starts == sorted(starts) and len(starts) == report.batches
    # Never two commits at once: each one ends before the next begins.
    kinds = [kind for kind, _ in events if kind != "decode"]
    assert kinds == ["commit", "committed"] * report.batches
    # A batch was decoded while the one before it was being committed.
    overlapped = [
        o for i, (kind, o) in enumerate(events) if kind == "decode" and i and events[i - 1][0] == "commit"
    ]
    assert overlapped, events
    kit.verify_exactly_once(topic)


def test_a_failed_commit_stops_the_sink_with_nothing_after_it_committed(kit):
    topic = _topic(kit, "pipefail", 300)
    sink = StreamSink(kit.settings, _options(kit, topic))
    calls: list[list[PartitionBatch]] = []
    commit = sink.committer.commit_durably

    def failing_second(parts: list[PartitionBatch]) -> list[PartitionBatch]:
        calls.append(parts)
        if len(calls) == 2:
            raise TransientError("the object store did not answer", exhausted=True)
        return commit(parts)

    sink.committer.commit_durably = failing_second  # type: ignore[method-assign]
    with pytest.raises(TransientError):
        sink.run(handle_signals=False)
    # The batch decoded while the second commit ran was never handed over.
    assert len(calls) == 2
    first_end = calls[0][0].next_offset
    assert sink.committer.state().for_topic(topic) == {0: first_end}
    # A restart resumes from the table: everything once, the failed batch's raw file replaced.
    again = run_sink(kit.settings, _options(kit, topic), handle_signals=False)
    assert again.complete and again.offsets == {0: 300} and again.records == 300 - first_end
    kit.verify_exactly_once(topic)
