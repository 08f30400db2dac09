"""Where the integration tests find real Kafka and PostgreSQL.

A Docker engine that answers a ping → testcontainers (Kafka and TimescaleDB images, the same versions as
docker-compose). Otherwise → the project's local stack (deploy/local/stack.sh), started if needed.
Never a mock.
"""

from __future__ import annotations

import contextlib
import os
import subprocess
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
KAFKA_IMAGE = "apache/kafka:4.3.1"
TIMESCALE_IMAGE = "timescale/timescaledb:2.17.2-pg16"
# The same port variables as deploy/local/stack.sh, so a second checkout can run beside the first.
LOCAL_KAFKA = f"127.0.0.1:{os.environ.get('COCKPIT_KAFKA_PORT', '9092')}"
LOCAL_ADMIN_URL = (
    f"postgresql://cockpit_admin:cockpit_admin@127.0.0.1:{os.environ.get('COCKPIT_PG_PORT', '5433')}/postgres"
)


@dataclass(frozen=True)
class Services:
    kind: str  # "testcontainers" or "local-stack"
    kafka_bootstrap: str
    admin_url: str  # superuser URL on the maintenance database

    def url_for(self, database: str, role: str | None = None, password: str | None = None) -> str:
        from psycopg.conninfo import conninfo_to_dict, make_conninfo

        params = conninfo_to_dict(self.admin_url)
        params["dbname"] = database
        if role:
            params["user"] = role
            params["password"] = password or role
        return make_conninfo(**params)  # type: ignore[arg-type]


def docker_engine_answers() -> bool:
    """True only when a Docker *engine* answers a ping (the client binary alone is not enough)."""
    if os.environ.get("COCKPIT_TEST_SERVICES") == "local":
        return False
    try:
        import docker

        client = docker.from_env(timeout=3)
        return bool(client.ping())
    except Exception:
        return False


@contextlib.contextmanager
def provide_services() -> Iterator[Services]:
    if docker_engine_answers():
        from testcontainers.kafka import KafkaContainer
        from testcontainers.postgres import PostgresContainer

        with (
            KafkaContainer(KAFKA_IMAGE).with_kraft() as kafka,
            PostgresContainer(
                TIMESCALE_IMAGE, username="cockpit_admin", password="cockpit_admin", dbname="postgres"
            ) as pg,
        ):
            url = pg.get_connection_url().replace("postgresql+psycopg2://", "postgresql://")
            yield Services("testcontainers", kafka.get_bootstrap_server(), url)
        return
    subprocess.run(["bash", str(ROOT / "deploy/local/stack.sh"), "up"], check=True, stdout=subprocess.DEVNULL)
    yield Services("local-stack", LOCAL_KAFKA, LOCAL_ADMIN_URL)
