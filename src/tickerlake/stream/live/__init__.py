"""The live view of a tick topic: :mod:`.core` (pure state: sessions, VWAP, event-time bars,
anomaly scores, re-exported here) and :mod:`.consumer` (the Kafka reader in its own group
that feeds it; imported on demand, as it loads the Kafka client).
"""

from tickerlake.stream.live.core import (
    Alert,
    Bar,
    Changes,
    LiveBook,
    LiveConfig,
    Quote,
    robust_z,
    window_start,
)

__all__ = ["Alert", "Bar", "Changes", "LiveBook", "LiveConfig", "Quote", "robust_z", "window_start"]
