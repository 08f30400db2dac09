"""Fixtures shared by every integration test package."""

from __future__ import annotations

import os
from pathlib import Path

import pytest


@pytest.fixture(scope="session")
def integration_registry_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The session's one registry directory (trained on first use by ``ensure_compatible``)."""
    if os.environ.get("COCKPIT_TEST_REGISTRY"):  # a prebuilt registry, for quick local iterations
        return Path(os.environ["COCKPIT_TEST_REGISTRY"])
    return tmp_path_factory.mktemp("registry")
