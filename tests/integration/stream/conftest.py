"""Fixtures for the streaming tests: a real lake with curated daily bars next to the real broker.

``kit`` bundles the lake settings, the broker address and the checks several tests share
(running the CLI in a fresh interpreter, reading topic watermarks, verifying that a topic
landed in ``stream.ticks`` exactly once).
"""

from __future__ import annotations

import datetime as dt
import itertools
import json
import os
import posixpath
import subprocess
import sys
import uuid
from dataclasses import dataclass
from typing import Any

import pytest

from tickerlake.config import DEFAULT_TICKERS, Settings
from tickerlake.lake.etl import run_etl
from tickerlake.lake.ingest import land
from tickerlake.lake.storage import LakeStorage
from tickerlake.query.engine import get_engine
from tickerlake.sources.sim import DATASET_COLUMNS, simulate
from tickerlake.stream import _kafka

__all__ = ["StreamKit", "kit", "stream_settings"]

#: The bars in the lake fixture: all eight default tickers over the first quarter of 2020.
START, END = dt.date(2020, 1, 1), dt.date(2020, 3, 31)
_SHIFT = 1 << 40


@dataclass
class StreamKit:
    """The lake and broker of the streaming tests, and shared checks.

    Attributes:
        settings: Lake settings (``market.daily_bars`` holds 2020-Q1 for eight tickers).
        bootstrap: Broker address.
    """

    settings: Settings
    bootstrap: str

    @staticmethod
    def new_topic(prefix: str) -> str:
        """A topic name no other test uses."""
        return f"{prefix}-{uuid.uuid4().hex[:8]}"

    def cli(self, *args: str) -> list[str]:
        """argv running the ``tickerlake`` CLI on the lake in a fresh interpreter."""
        return [
            sys.executable,
            "-c",
            "from tickerlake.cli import main; main()",
            "--lake",
            self.settings.lake,
            *args,
        ]

    @staticmethod
    def env() -> dict[str, str]:
        """Environment for CLI subprocesses: no developer Kafka/S3 settings leak in."""
        env = {k: v for k, v in os.environ.items() if not k.startswith("TICKERLAKE_")}
        env["PYTHONUNBUFFERED"] = "1"
        return env

    def run_cli(self, *args: str, timeout: float = 120) -> subprocess.CompletedProcess[str]:
        """Run the CLI to completion, capturing its output."""
        return subprocess.run(
            self.cli(*args), capture_output=True, text=True, timeout=timeout, env=self.env()
        )

    def ranges(self, topic: str) -> dict[int, tuple[int, int]]:
        """(low, high) watermark of every partition of a topic."""
        admin = _kafka.admin_client(self.settings, self.bootstrap)
        parts = _kafka.topic_partitions(admin, topic, self.bootstrap) or []
        consumer = _kafka.plain_consumer(self.settings, self.bootstrap)
        try:
            return _kafka.watermarks(consumer, topic, parts, self.bootstrap)
        finally:
            consumer.close()

    def sql(self, sql: str, params: list[Any] | None = None) -> list[tuple[Any, ...]]:
        """Rows of a read-only query through the product's SQL engine."""
        engine = get_engine(self.settings)
        engine.refresh(force=True)
        return engine.query(sql, params, limit=0).rows()

    def raw_ranges(self, topic: str, dataset: str = "stream_ticks") -> dict[int, list[tuple[int, int, int]]]:
        """Per partition: (first offset, last offset, lines) of each raw file of the topic, in order."""
        storage = LakeStorage(self.settings)
        out: dict[int, list[tuple[int, int, int]]] = {}
        for entry in storage.list_files(storage.uri("raw", dataset, f"topic={topic}")):
            name = posixpath.basename(entry.uri)
            p, first, last = name[len(topic) + 1 : -len(".jsonl")].split("-")
            lines = storage.read_bytes(entry.uri).splitlines()
            offsets = [json.loads(line)["kafka_offset"] for line in lines]
            assert offsets == sorted(offsets) and all(int(first) <= o <= int(last) for o in offsets), name
            out.setdefault(int(p), []).append((int(first), int(last), len(lines)))
        return {p: sorted(v) for p, v in out.items()}

    def verify_exactly_once(self, topic: str, dlq: int = 0) -> dict[str, Any]:
        """Assert every record of ``topic`` is in ``stream.ticks`` exactly once (minus ``dlq`` dead letters).

        Checks the row count, that no (partition, offset) repeats, a checksum over
        (partition, offset) against the topic's watermarks, and that the raw zone's files
        do not overlap and hold as many lines as the table has rows.
        """
        ranges = self.ranges(topic)
        produced = sum(high - low for low, high in ranges.values())
        expected_sum = sum(
            p * _SHIFT * (high - low) + (low + high - 1) * (high - low) // 2
            for p, (low, high) in ranges.items()
        )
        count, distinct, checksum = self.sql(
            "SELECT count(*), count(DISTINCT (kafka_partition, kafka_offset)), "
            f"sum(kafka_partition::HUGEINT * {_SHIFT} + kafka_offset) FROM stream.ticks WHERE kafka_topic = ?",
            [topic],
        )[0]
        assert count == distinct, "a (partition, offset) is in the table twice"
        assert count + dlq == produced
        if not dlq:
            assert int(checksum) == expected_sum, (
                "the table's (partition, offset) set differs from the topic's"
            )
        per_partition = dict(
            self.sql(
                "SELECT kafka_partition, count(*) FROM stream.ticks WHERE kafka_topic = ? GROUP BY 1", [topic]
            )
        )
        for p, files in self.raw_ranges(topic).items():
            for (_, last_a, _), (first_b, _, _) in itertools.pairwise(files):
                assert last_a < first_b, f"raw files of partition {p} overlap"
            assert sum(lines for _, _, lines in files) == per_partition.get(p, 0)
        return {"produced": produced, "rows": count, "checksum": int(checksum or 0)}


@pytest.fixture(scope="session")
def stream_settings(tmp_path_factory: pytest.TempPathFactory) -> Settings:
    """A lake whose ``market.daily_bars`` holds the simulated FANGMANT bars of 2020-Q1."""
    root = tmp_path_factory.mktemp("stream")
    settings = Settings(lake=str(root / "lake"), bootstrap_servers="", s3_endpoint="")
    land(settings, "sim", simulate(list(DEFAULT_TICKERS), START, END), columns=dict(DATASET_COLUMNS))
    run_etl(settings)
    return settings


@pytest.fixture(scope="session")
def kit(stream_settings: Settings, kafka_bootstrap: str) -> StreamKit:
    """The streaming tests' lake and broker."""
    return StreamKit(stream_settings, kafka_bootstrap)
