"""Passwords never reach a message or a log line, whatever form the connection string has."""

from __future__ import annotations

import pytest

from common.db import redact

pytestmark = pytest.mark.unit


@pytest.mark.parametrize(
    "url",
    [
        "postgresql://writer:s3cret@db:5432/cockpit",
        "host=db user=writer password=s3cret dbname=cockpit",
        "host=db user=writer PASSWORD = 's3 cret' dbname=cockpit",
        "postgresql://db/cockpit?user=writer&password=s3cret",
    ],
)
def test_redact_hides_the_password(url: str) -> None:
    out = redact(url)
    assert "s3cret" not in out and "s3 cret" not in out
    assert "***" in out and "db" in out
