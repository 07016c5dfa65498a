"""Pure parts of the dev S3 server: its configuration and the client settings it implies."""

from __future__ import annotations

from pathlib import Path

from tickerlake.services.s3proxy import S3Endpoint, render_s3proxy_properties

__all__: list[str] = []


def test_s3proxy_properties_serve_a_folder_on_loopback_with_fixed_keys() -> None:
    text = render_s3proxy_properties(18080, Path("/srv/buckets"))
    props = dict(ln.split("=", 1) for ln in text.splitlines() if ln and not ln.startswith("#"))

    assert props == {
        "s3proxy.endpoint": "http://127.0.0.1:18080",
        "s3proxy.authorization": "aws-v2-or-v4",
        "s3proxy.identity": "tickerlake",
        "s3proxy.credential": "tickerlake-dev-secret",
        "jclouds.provider": "filesystem",
        "jclouds.filesystem.basedir": "/srv/buckets",
    }


def test_endpoint_gives_lake_settings_and_environment() -> None:
    ep = S3Endpoint("http://127.0.0.1:18080", "key", "secret", "us-east-1", "bkt")

    s = ep.settings()
    assert (s.lake_uri, s.s3_endpoint, s.s3_access_key_id) == (
        "s3://bkt/lake",
        "http://127.0.0.1:18080",
        "key",
    )
    assert s.s3_secret_access_key.get_secret_value() == "secret"
    assert ep.settings("s3://bkt/other/").lake_uri == "s3://bkt/other"
    assert ep.env() == {
        "TICKERLAKE_S3_ENDPOINT": "http://127.0.0.1:18080",
        "TICKERLAKE_S3_ACCESS_KEY_ID": "key",
        "TICKERLAKE_S3_SECRET_ACCESS_KEY": "secret",
        "TICKERLAKE_S3_REGION": "us-east-1",
    }
