"""Smoke test of a deployed cockpit: one telemetry event in, one score out through the API.

``python -m api smoke`` publishes ONE contract event for a dedicated smoke turbine (key = turbine id, on
the configured telemetry topic), then polls ``GET /v1/turbines/{id}`` until the API shows an assessment
as of that event (the scorer consumed, scored and wrote it; the API read it). It prints the timings
(publish, publish -> turbine visible, publish -> score visible) and exits 0, or 1 with a message saying
which step failed and the last answer seen.

Why in ``api``: the smoke test must run where the deployment runs (inside the API image on Kubernetes,
in a release's virtualenv locally) with the deployment's own settings; the API package ships in both.
Settings: :class:`SmokeSettings` only (Kafka address and topic names as every service reads them, the
API address as the CLI reads it); nothing else reads the environment.
"""

from __future__ import annotations

import time
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from typing import Any

import httpx
from pydantic import Field, model_validator

from common.contracts import STATUS_OK, TelemetryEvent, make_event_id
from common.settings import LOCAL_HOST, CommonSettings

EXIT_OK, EXIT_FAILED = 0, 1
DEFAULT_TURBINE = "SMOKE-WT-001"
DEFAULT_SITE = "SMOKE-SITE"


class SmokeSettings(CommonSettings):
    """Kafka (``COCKPIT_KAFKA_BOOTSTRAP_SERVERS``, ``COCKPIT_TELEMETRY_TOPIC``) and the API address.

    The API address is read like the CLI's (:class:`api.settings.ClientSettings`): ``COCKPIT_API_URL``,
    or ``http://127.0.0.1:<COCKPIT_PORT>``.
    """

    api_url: str = Field(default=f"http://{LOCAL_HOST}:8000", min_length=1)
    port: int | None = Field(default=None, ge=1, le=65535, description="Local API port (COCKPIT_PORT).")
    timeout_seconds: float = Field(default=10.0, gt=0, description="Timeout of one HTTP request.")

    @model_validator(mode="after")
    def _follow_local_port(self) -> SmokeSettings:
        if self.port is not None and "api_url" not in self.model_fields_set:
            self.api_url = f"http://{LOCAL_HOST}:{self.port}"
        return self


@dataclass
class SmokeResult:
    """What one smoke run saw; ``ok`` False carries the failed step and the last answer."""

    ok: bool
    turbine_id: str
    topic: str
    api_url: str
    event_time: str
    event_id: str
    step: str = "publish"
    partition: int | None = None
    offset: int | None = None
    publish_s: float | None = None
    visible_s: float | None = None  # publish -> the turbine is known to the API
    score_s: float | None = None  # publish -> an assessment as of the event is served
    polls: int = 0
    tier: str | None = None
    score: float | None = None
    model_version: str | None = None
    message: str = ""
    last_answer: dict[str, Any] = field(default_factory=dict)

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


def smoke_event(turbine_id: str, site_id: str, at: datetime) -> TelemetryEvent:
    """A plausible, contract-valid reading (moderate wind, normal temperatures) at ``at``."""
    return TelemetryEvent(
        event_id=make_event_id(turbine_id, at),
        turbine_id=turbine_id,
        site_id=site_id,
        event_time=at,
        wind_speed_ms=8.0,
        wind_direction_deg=210.0,
        ambient_temp_c=12.0,
        power_kw=1450.0,
        rotor_rpm=14.0,
        generator_rpm=1400.0,
        pitch_angle_deg=2.0,
        nacelle_direction_deg=208.0,
        gearbox_oil_temp_c=55.0,
        gearbox_bearing_temp_c=60.0,
        generator_winding_temp_c=70.0,
        generator_bearing_temp_c=52.0,
        main_bearing_temp_c=40.0,
        vibration_mm_s=2.5,
        converter_temp_c=45.0,
        pitch_hydraulic_pressure_bar=180.0,
        status_code=STATUS_OK,
    )


def check_ids(turbine_id: str, site_id: str) -> None:
    """Refuse identifiers the contract refuses (the scorer would dead-letter the event), naming them."""
    import re

    from common.contracts import IDENTIFIER_PATTERN

    for name, value in (("--turbine-id", turbine_id), ("--site-id", site_id)):
        if not re.match(IDENTIFIER_PATTERN, value):
            raise ValueError(f"{name} {value!r} is not a contract identifier ({IDENTIFIER_PATTERN})")


def _publish(settings: SmokeSettings, event: TelemetryEvent, timeout: float) -> tuple[int, int]:
    """Send the event (key = turbine id, acks=all) and wait for the broker's acknowledgement."""
    import logging

    from kafka import KafkaProducer

    logging.getLogger("kafka").setLevel(logging.CRITICAL)  # the one error message below says it all
    config: dict[str, Any] = {
        "bootstrap_servers": [s.strip() for s in settings.kafka_bootstrap_servers.split(",") if s.strip()],
        "acks": "all",
        "client_id": "cockpit-smoke",
        "request_timeout_ms": int(timeout * 1000),
        "max_block_ms": int(timeout * 1000),
    }
    if "bootstrap_timeout_ms" in KafkaProducer.DEFAULT_CONFIG:  # kafka-python >= 3
        config["bootstrap_timeout_ms"] = int(timeout * 1000)
    producer = KafkaProducer(**config)
    try:
        meta = producer.send(
            settings.telemetry_topic, key=event.turbine_id.encode(), value=event.to_json()
        ).get(timeout=timeout)
        return int(meta.partition), int(meta.offset)
    finally:
        producer.close(timeout=5)


def _answer(res: httpx.Response) -> dict[str, Any]:
    try:
        body: Any = res.json()
    except ValueError:
        body = res.text[:300]
    return {"status": res.status_code, "body": body}


def run_smoke(
    settings: SmokeSettings,
    *,
    turbine_id: str = DEFAULT_TURBINE,
    site_id: str = DEFAULT_SITE,
    timeout: float = 60.0,
    interval: float = 0.25,
) -> SmokeResult:
    """Publish one event and wait until the API serves a score as of it (at most ``timeout`` s)."""
    now = datetime.now(UTC)
    at = now.replace(microsecond=now.microsecond // 1000 * 1000)  # the contract keeps milliseconds
    event = smoke_event(turbine_id, site_id, at)
    res = SmokeResult(
        ok=False,
        turbine_id=turbine_id,
        topic=settings.telemetry_topic,
        api_url=settings.api_url,
        event_time=at.isoformat(),
        event_id=event.event_id,
    )
    t0 = time.monotonic()
    try:
        res.partition, res.offset = _publish(settings, event, min(timeout, 30.0))
    except Exception as exc:  # any client error: the message names the broker and the topic
        res.message = (
            f"could not publish to topic {settings.telemetry_topic!r} on Kafka at "
            f"{settings.kafka_bootstrap_servers}: {type(exc).__name__}: {exc} (is the broker up and the "
            "topic created? python -m common topics)"
        )
        return res
    res.publish_s = round(time.monotonic() - t0, 3)
    res.step = "score"
    deadline = t0 + timeout
    url = f"/v1/turbines/{turbine_id}"
    with httpx.Client(base_url=settings.api_url, timeout=settings.timeout_seconds) as client:
        while True:
            res.polls += 1
            try:
                answer = client.get(url)
                res.last_answer = _answer(answer)
            except httpx.HTTPError as exc:
                res.last_answer = {"error": f"{type(exc).__name__}: {exc}"}
                answer = None
            if answer is not None and answer.status_code == 200:
                body = answer.json()
                if res.visible_s is None:
                    res.visible_s = round(time.monotonic() - t0, 3)
                assessment = body.get("assessment") or {}
                as_of = assessment.get("as_of")
                if as_of and datetime.fromisoformat(as_of) >= at:
                    res.score_s = round(time.monotonic() - t0, 3)
                    res.tier, res.score = assessment.get("tier"), assessment.get("score")
                    res.model_version = assessment.get("model_version")
                    res.ok, res.step = True, "done"
                    res.message = (
                        f"score visible through the API {res.score_s:.2f} s after publishing "
                        f"(tier {res.tier}, score {res.score}, model {res.model_version})"
                    )
                    return res
            if time.monotonic() >= deadline:
                break
            time.sleep(interval)
    seen = "the turbine is known but has no score as of the event" if res.visible_s else "turbine unknown"
    res.message = (
        f"no score for {turbine_id} as of {at.isoformat()} within {timeout:g} s of publishing ({seen}); "
        f"last answer of GET {settings.api_url}{url}: {res.last_answer}; check the scorer's /readyz "
        f"(model, partitions of {settings.telemetry_topic!r}) and the API's /readyz"
    )
    return res


def describe(res: SmokeResult) -> str:
    """Human lines: what was published where, each timing, the verdict."""
    lines = [
        f"smoke: event {res.event_id} for {res.turbine_id} at {res.event_time} -> topic {res.topic}"
        + (f" (partition {res.partition}, offset {res.offset})" if res.partition is not None else ""),
    ]
    if res.publish_s is not None:
        lines.append(f"  publish acknowledged         {res.publish_s:7.2f} s")
    if res.visible_s is not None:
        lines.append(f"  turbine visible in the API   {res.visible_s:7.2f} s after publishing")
    if res.score_s is not None:
        lines.append(
            f"  score visible in the API     {res.score_s:7.2f} s after publishing ({res.polls} polls)"
        )
    lines.append(("smoke OK: " if res.ok else f"smoke FAILED at step {res.step}: ") + res.message)
    return "\n".join(lines)
