"""Pure parts of the jar fetcher: Java version parsing and the pom stamp."""

from __future__ import annotations

from pathlib import Path

import pytest

from tickerlake.services.jars import classpath, parse_java_major, pom_digest

__all__: list[str] = []


@pytest.mark.parametrize(
    ("output", "major"),
    [
        ('openjdk version "17.0.15" 2025-04-15\nOpenJDK Runtime Environment', 17),
        ('openjdk version "21" 2023-09-19', 21),
        ('java version "1.8.0_381"\nJava(TM) SE Runtime Environment', 8),
        ('openjdk version "25-ea" 2025-09-16', 25),
        ("command not understood", None),
    ],
)
def test_parse_java_major(output: str, major: int | None) -> None:
    assert parse_java_major(output) == major


def test_pom_digest_is_sha256_of_the_pom() -> None:
    assert pom_digest(b"") == "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"
    assert pom_digest(b"abc") == "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"


def test_classpath_is_a_jvm_wildcard_per_service(tmp_path: Path) -> None:
    assert classpath("kafka", tmp_path) == f"{tmp_path}/lib/kafka/*"
    assert classpath("s3", tmp_path) == f"{tmp_path}/lib/s3proxy/*"
