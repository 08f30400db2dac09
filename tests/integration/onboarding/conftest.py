"""Onboarding test fixtures: the scorer harness's worker starter, topics and full-model registry.

Why re-exported from tests/integration/scorer/conftest.py: the onboarding test starts the real worker
exactly as the scorer tests do (``python -m scorer worker`` subprocess); one harness, not a copy.
"""

from __future__ import annotations

from tests.integration.scorer.conftest import (  # noqa: F401  (pytest fixtures)
    _registry_dir,
    start_worker,
    tiny_registry,
    topics,
)
