"""API integration fixtures: a private seeded database, app settings, an in-process client, a live server.

Why a private database (``fresh_database("api")``) rather than the shared session one: the API tests assert
exact counts (tiers, stale share); other components' tests write into the shared database.
"""

from __future__ import annotations

import socket
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass

import pytest
from fastapi.testclient import TestClient

from api.app import create_app
from api.settings import ApiSettings
from common.settings import load_settings
from tests.integration.api.seed import HistoricalFleet, Seeded, seed_fleet, seed_historical_fleet

API_KEY = "test-key-0123456789"


def reader_url_for(writer_url: str) -> str:
    from psycopg.conninfo import conninfo_to_dict, make_conninfo

    params = conninfo_to_dict(writer_url)
    params.update(user="cockpit_reader", password="cockpit_reader")
    return make_conninfo(**params)  # type: ignore[arg-type]


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@dataclass(frozen=True)
class ApiDb:
    writer_url: str
    reader_url: str
    seeded: Seeded


@pytest.fixture(scope="session")
def api_db(fresh_database: Callable[[str], str]) -> ApiDb:
    url = fresh_database("api")
    return ApiDb(url, reader_url_for(url), seed_fleet(url))


@dataclass(frozen=True)
class HistDb:
    writer_url: str
    reader_url: str
    fleet: HistoricalFleet


@pytest.fixture(scope="session")
def hist_db(fresh_database: Callable[[str], str]) -> HistDb:
    """A fleet imported from history (data clock 2024-03-02) with a live, not-ready scorer heartbeat."""
    url = fresh_database("api_hist")
    return HistDb(url, reader_url_for(url), seed_historical_fleet(url))


@pytest.fixture(scope="session")
def hist_client(make_settings: Callable[..., ApiSettings], hist_db: HistDb) -> Iterator[TestClient]:
    with TestClient(create_app(make_settings(reader_database_url=hist_db.reader_url))) as test_client:
        yield test_client


@pytest.fixture(scope="session")
def command_topic(make_topic: Callable[..., str]) -> str:
    return make_topic("api-commands", 1)


@pytest.fixture(scope="session")
def make_settings(
    api_db: ApiDb, kafka_bootstrap: str, command_topic: str, tmp_path_factory: pytest.TempPathFactory
) -> Callable[..., ApiSettings]:
    """Settings for the seeded DB; generous heartbeat age so that a long session does not go stale.

    The model registry is an empty directory of the session (a fresh clone has no ./registry: the
    API must not depend on the checkout's own registry; tests that need versions pass their own)."""
    registry = tmp_path_factory.mktemp("api-registry")

    def _make(**overrides: object) -> ApiSettings:
        values: dict[str, object] = {
            "reader_database_url": api_db.reader_url,
            "registry_dir": registry,
            "kafka_bootstrap_servers": kafka_bootstrap,
            "command_topic": command_topic,
            "ensure_topics_on_start": False,  # never touch the default-named topics of the test broker
            "api_key": API_KEY,
            "heartbeat_max_age_seconds": 6 * 3600,
            "stale_after_minutes": 30,
            "log_format": "console",
            "log_level": "WARNING",
            "cors_origins": [],
        }
        values.update(overrides)
        return load_settings(ApiSettings, **values)

    return _make


@pytest.fixture(scope="session")
def client(make_settings: Callable[..., ApiSettings]) -> Iterator[TestClient]:
    with TestClient(create_app(make_settings())) as test_client:
        yield test_client


class LiveServer:
    """uvicorn in a background thread on a free loopback port (real HTTP for CLI, browser, schemathesis)."""

    def __init__(self, settings: ApiSettings) -> None:
        import uvicorn

        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        config = uvicorn.Config(
            create_app(settings),
            host="127.0.0.1",
            port=self.port,
            log_config=None,
            access_log=False,
            lifespan="on",
        )
        self.server = uvicorn.Server(config)
        self.thread = threading.Thread(target=self.server.run, name="live-api", daemon=True)

    def __enter__(self) -> LiveServer:
        self.thread.start()
        deadline = time.monotonic() + 20
        while not self.server.started:
            if time.monotonic() > deadline or not self.thread.is_alive():
                raise RuntimeError(f"uvicorn did not start on {self.url}")
            time.sleep(0.05)
        return self

    def __exit__(self, *exc: object) -> None:
        self.server.should_exit = True
        self.thread.join(timeout=10)


@pytest.fixture(scope="session")
def live_api(make_settings: Callable[..., ApiSettings]) -> Iterator[str]:
    with LiveServer(make_settings()) as server:
        yield server.url
