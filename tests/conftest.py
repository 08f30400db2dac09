"""Shared fixtures: real services for integration tests, isolation per run (own topics, own database)."""

from __future__ import annotations

import os
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

# Kafka and PostgreSQL share two cores with the tests: keep numeric libraries single-threaded.
for _var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ.setdefault(_var, "1")

TESTS_DIR = Path(__file__).resolve().parent
RUN_ID = uuid.uuid4().hex[:8]


def pytest_configure(config: pytest.Config) -> None:
    """Markers defined here rather than in pyproject.toml (owned elsewhere); --strict-markers accepts them."""
    config.addinivalue_line(
        "markers", "acceptance: the README's commands run in a fresh clone on free ports (slow, minutes)"
    )


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """Tests under tests/unit are `unit`, under tests/integration are `integration`, whatever they say."""
    for item in items:
        path = Path(str(item.fspath))
        if TESTS_DIR / "integration" in path.parents:
            item.add_marker(pytest.mark.integration)
        elif TESTS_DIR / "unit" in path.parents:
            item.add_marker(pytest.mark.unit)
        elif TESTS_DIR / "acceptance" in path.parents:
            item.add_marker(pytest.mark.acceptance)


@pytest.fixture(scope="session")
def run_id() -> str:
    return RUN_ID


@pytest.fixture(scope="session")
def services() -> Iterator[object]:
    from tests.services import provide_services

    with provide_services() as svc:
        yield svc


@pytest.fixture(scope="session")
def kafka_bootstrap(services) -> str:  # type: ignore[no-untyped-def]
    return services.kafka_bootstrap


@pytest.fixture(scope="session")
def make_topic(kafka_bootstrap: str) -> Iterator[Callable[..., str]]:
    """Create a topic private to this test run: ``make_topic("telemetry", partitions=3)``."""
    from kafka import KafkaAdminClient
    from kafka.admin import NewTopic

    admin = KafkaAdminClient(bootstrap_servers=kafka_bootstrap, client_id=f"tests-{RUN_ID}")
    created: list[str] = []

    def _make(name: str, partitions: int = 3) -> str:
        topic = f"test-{RUN_ID}-{name}-{uuid.uuid4().hex[:6]}"
        admin.create_topics([NewTopic(topic, num_partitions=partitions, replication_factor=1)])
        created.append(topic)
        return topic

    yield _make
    try:
        if created:
            admin.delete_topics(created)
    finally:
        admin.close()


def _create_database(services, name: str) -> None:  # type: ignore[no-untyped-def]
    import psycopg
    from psycopg import sql

    with psycopg.connect(services.admin_url, autocommit=True) as conn:
        for role in ("cockpit_writer", "cockpit_reader"):
            exists = conn.execute("SELECT 1 FROM pg_roles WHERE rolname = %s", (role,)).fetchone()
            if not exists:
                conn.execute(
                    sql.SQL("CREATE ROLE {} LOGIN PASSWORD {}").format(
                        sql.Identifier(role), sql.Literal(role)
                    )
                )
        conn.execute("ALTER ROLE cockpit_reader SET default_transaction_read_only = on")
        conn.execute(sql.SQL("CREATE DATABASE {} OWNER cockpit_writer").format(sql.Identifier(name)))
    with psycopg.connect(services.url_for(name), autocommit=True) as conn:
        available = conn.execute(
            "SELECT 1 FROM pg_available_extensions WHERE name = 'timescaledb'"
        ).fetchone()
        if available:  # creating the extension needs a superuser; the migration then finds it present
            conn.execute("CREATE EXTENSION IF NOT EXISTS timescaledb")
        conn.execute("GRANT CREATE ON SCHEMA public TO cockpit_writer")


def _drop_database(services, name: str) -> None:  # type: ignore[no-untyped-def]
    import psycopg
    from psycopg import sql

    with psycopg.connect(services.admin_url, autocommit=True) as conn:
        conn.execute(sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name)))


@pytest.fixture(scope="session")
def fresh_database(services) -> Iterator[Callable[[str], str]]:  # type: ignore[no-untyped-def]
    """Factory of empty, migrated databases private to this run; returns the writer URL."""
    from common.db import grant_reader, migrate

    made: list[str] = []

    def _fresh(label: str = "db") -> str:
        name = f"cockpit_test_{RUN_ID}_{label}_{uuid.uuid4().hex[:4]}"
        _create_database(services, name)
        made.append(name)
        url = services.url_for(name, "cockpit_writer")
        migrate(url)
        grant_reader(url, "cockpit_reader")
        return url

    yield _fresh
    if not os.environ.get("COCKPIT_KEEP_TEST_DB"):
        for name in made:
            _drop_database(services, name)


@pytest.fixture(scope="session")
def database_url(fresh_database: Callable[[str], str]) -> str:
    """Writer URL of the session's migrated database."""
    return fresh_database("main")


@pytest.fixture(scope="session")
def reader_database_url(database_url: str) -> str:
    """Same database as ``database_url``, through the read-only role the API uses."""
    from psycopg.conninfo import conninfo_to_dict, make_conninfo

    params = conninfo_to_dict(database_url)
    params.update(user="cockpit_reader", password="cockpit_reader")
    return make_conninfo(**params)  # type: ignore[arg-type]


@pytest.fixture(scope="session")
def admin_database_url(services) -> str:  # type: ignore[no-untyped-def]
    return services.admin_url
