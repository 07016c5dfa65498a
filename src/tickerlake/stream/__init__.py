"""The real-time half: events on Apache Kafka into the lake.

* :mod:`~tickerlake.stream.schema` — event structs and the validation rules (pure);
* :mod:`~tickerlake.stream.ticks` — daily bars → intraday ticks that add back up to them (pure);
* :mod:`~tickerlake.stream.replay` — the producer (``stream replay``);
* :mod:`~tickerlake.stream.sink` — the exactly-once consumer into the raw zone and Iceberg (``stream sink``):
  offsets, batches, dead letters, raw files, the committer and the loop, one module each;
* :mod:`~tickerlake.stream._kafka` — the one module that imports ``confluent_kafka`` (client config, helpers);
* :mod:`~tickerlake.stream.status` — lag per partition (``stream status``, ``stream topics``);
* :mod:`~tickerlake.stream.live` — the live view: sessions, VWAP, event-time bars and anomaly scores
  (``core``, pure) fed by a reader in its own consumer group (``consumer``);
* :mod:`~tickerlake.stream.demo` — the demo's streaming act (``stream demo``).

Submodules are imported on demand so that importing the package stays cheap.
"""

from __future__ import annotations

__all__: list[str] = []
