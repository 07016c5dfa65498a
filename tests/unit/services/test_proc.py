"""Choosing the line of a service log that explains a failed start."""

from __future__ import annotations

from tickerlake.services._proc import pick_error

__all__: list[str] = []

_OLD_RUN = "===== 2026-01-01T00:00:00 starting: java old\n[x] ERROR stale failure (kafka.Kafka$)\n"


def test_exception_with_message_wins_over_error_lines() -> None:
    log = _OLD_RUN + (
        "===== 2026-01-02T00:00:00 starting: java new\n"
        "[t] INFO starting (kafka.Kafka$)\n"
        "[t] ERROR Exiting Kafka due to fatal exception during startup. (kafka.Kafka$)\n"
        "org.apache.kafka.common.KafkaException: Socket server failed to bind to 127.0.0.1:9092\n"
        "\tat kafka.network.Acceptor.openServerSocket(SocketServer.scala:700)\n"
        "\t... 3 more\n"
    )
    assert (
        pick_error(log)
        == "org.apache.kafka.common.KafkaException: Socket server failed to bind to 127.0.0.1:9092"
    )


def test_error_line_then_last_line_of_latest_run() -> None:
    assert pick_error(_OLD_RUN + "===== t starting: java\nINFO a\n[t] ERROR broken thing\nINFO b\n") == (
        "[t] ERROR broken thing"
    )
    assert pick_error(_OLD_RUN + "===== t starting: java\nINFO a\nINFO last words\n") == "INFO last words"
    assert pick_error(_OLD_RUN + "===== t starting: java\n") == "no output"
    assert pick_error("") == "no output"
