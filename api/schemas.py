"""Response models: they document the contract (OpenAPI, examples); handlers serialise with orjson."""

from __future__ import annotations

from datetime import date, datetime
from typing import Any, Literal
from uuid import UUID

from pydantic import BaseModel, ConfigDict, Field

TierName = Literal["critical", "high", "moderate", "low", "unknown"]
SortKey = Literal["score", "probability", "ttf", "turbine_id"]
SortOrder = Literal["asc", "desc"]
FleetMode = Literal["live", "historical", "mixed", "empty"]
SiteMode = Literal["live", "historical", "empty"]


class Reason(BaseModel):
    """One explanation of a score, as written by the scorer."""

    model_config = ConfigDict(extra="allow")

    indicator: str | None = Field(default=None, examples=["gearbox_bearing_temp_c"])
    text: str | None = Field(default=None, examples=["Gearbox bearing 9 K above normal for this load"])
    value: Any = Field(default=None, description="Observed value (usually a number).", examples=[84.2])
    normal_range: Any = Field(default=None, examples=[[55.0, 75.0]])


class TurbineMetadata(BaseModel):
    """What the fleet register says about the turbine (`python -m common fleet import`); null when not
    given. docs/INTERFACES.md, "Fleet register"."""

    manufacturer: str | None = Field(default=None, examples=["Vestas"])
    model: str | None = Field(default=None, examples=["V90-2.0 MW"])
    rated_power_kw: float | None = Field(default=None, description="Rated power, kW.", examples=[2000.0])
    rotor_diameter_m: float | None = Field(default=None, description="Rotor diameter, m.", examples=[90.0])
    hub_height_m: float | None = Field(default=None, description="Hub height, m.", examples=[80.0])
    latitude: float | None = Field(default=None, description="WGS 84 degrees north.", examples=[55.4312])
    longitude: float | None = Field(default=None, description="WGS 84 degrees east.", examples=[-2.1875])
    commissioning_date: date | None = Field(default=None, examples=["2011-06-14"])
    fitted_sensors: list[str] | None = Field(
        default=None,
        description="Contract signals the turbine measures, in contract order; null = not declared (all "
        "sensors). A signal that is not fitted is not counted as missing data.",
        examples=[["wind_speed_ms", "ambient_temp_c", "power_kw", "pitch_angle_deg"]],
    )
    sensor_set: str | None = Field(
        default=None,
        description="Model set that scores the turbine given its fitted sensors: `full` (every sensor) or "
        "`operational` (wind, power, ambient, pitch/rotor speed); null when its sensors satisfy neither.",
        examples=["operational"],
    )


class TurbineRank(TurbineMetadata):
    turbine_id: str = Field(examples=["WT-007"])
    site_id: str = Field(examples=["SITE-A"])
    score: float | None = Field(description="Risk score 0-100; null when never scored.", examples=[87.5])
    tier: TierName = Field(examples=["critical"])
    probability: float | None = Field(description="Failure probability within the horizon.", examples=[0.62])
    ttf_days: float | None = Field(description="Estimated days to failure.", examples=[9.5])
    ttf_low_days: float | None = Field(examples=[5.0])
    ttf_high_days: float | None = Field(examples=[16.0])
    reasons: list[Reason] = Field(description="Top reasons (at most three).")
    last_event_time: datetime | None
    as_of: datetime | None = Field(description="As-of (event) time of the current assessment.")
    source: str | None = Field(
        default=None,
        description="What produced the current assessment: `stream` or `sweep`.",
        examples=["stream"],
    )
    model_version: str | None = Field(examples=["2026.11.1"])
    stale: bool = Field(
        description="True when the turbine's last event is older than its site's data clock minus "
        "COCKPIT_STALE_AFTER_MINUTES (or it never sent one)."
    )


class SiteClockOut(BaseModel):
    site_id: str
    data_as_of: datetime | None = Field(
        description="The site's data clock: newest event time of its turbines."
    )
    turbines: int
    mode: SiteMode = Field(
        description="`historical` when the data clock is more than 2 h behind the wall clock."
    )
    silent_seconds: float | None = Field(description="Wall clock minus data clock.")


class DataClock(BaseModel):
    """Whether what is shown is live data or history, and as of when."""

    mode: FleetMode = Field(examples=["historical"])
    data_as_of: datetime | None = Field(description="Newest event time of the fleet.")
    message: str | None = Field(
        description="Sentence to show (null when live).",
        examples=["historical data: ranking as of 2024-03-02 14:10 UTC"],
    )
    sites: list[SiteClockOut]


class TurbinePage(DataClock):
    items: list[TurbineRank]
    next_cursor: str | None = Field(description="Pass as `cursor` to get the next page; null at the end.")
    sort: SortKey
    order: SortOrder
    scorer_stale: bool = Field(
        description="The scorer is silent, lagging or not ready: new data may not be scored yet."
    )
    generated_at: datetime


class Measurements(BaseModel):
    event_time: datetime
    status_code: int
    values: dict[str, float | None]


class Assessment(BaseModel):
    """The turbine's one current assessment (``turbine_state``)."""

    source: str = Field(description="`stream` or `sweep`: what produced it.", examples=["stream"])
    as_of: datetime = Field(description="Event (data) time the assessment is as of.")
    scored_at: datetime
    score: float
    tier: TierName
    probability: float | None
    ttf_days: float | None
    ttf_low_days: float | None
    ttf_high_days: float | None
    model_version: str
    run_id: UUID | None
    reasons: list[Reason]


class SweepRun(BaseModel):
    run_id: UUID
    trigger: str = Field(examples=["on_demand"])
    status: Literal["requested", "running", "succeeded", "failed"]
    requested_at: datetime
    started_at: datetime | None
    finished_at: datetime | None
    turbines_scored: int
    tier_counts: dict[str, int]
    model_version: str | None
    error: str | None
    duration_ms: float | None


class SweepRef(BaseModel):
    """Which sweep run last scored the turbine: a reference, not a score."""

    run_id: UUID
    trigger: str
    status: Literal["requested", "running", "succeeded", "failed"]
    requested_at: datetime
    finished_at: datetime | None
    model_version: str | None
    as_of: datetime | None = Field(description="Data time the sweep scored this turbine as of.")


class TurbineDetail(TurbineMetadata):
    turbine_id: str
    site_id: str
    commissioned_on: str | None = Field(description="ISO date (same as `commissioning_date`).")
    first_seen_at: datetime
    last_event_time: datetime | None
    stale: bool = Field(description="Last event older than the site's data clock minus the staleness limit.")
    site_mode: SiteMode
    data_as_of: datetime | None = Field(description="The site's data clock.")
    measurements: Measurements | None
    assessment: Assessment | None = Field(description="The one current assessment; null when never scored.")
    data_quality: dict[str, Any]
    last_sweep_run: SweepRef | None
    last_intervention: dict[str, Any] | None = Field(
        default=None,
        description="The turbine's most recent intervention (GET /v1/turbines/{id}/interventions), or null.",
    )


class ScorePoint(BaseModel):
    bucket: datetime
    avg_score: float
    max_score: float
    last_score: float
    tier: TierName = Field(description="Tier of the last assessment in the bucket.")
    worst_tier: TierName
    samples: int


class TelemetryPoint(BaseModel):
    bucket: datetime
    samples: int
    wind_speed_ms: float | None
    power_kw: float | None
    ambient_temp_c: float | None
    gearbox_bearing_temp_c: float | None
    generator_winding_temp_c: float | None
    main_bearing_temp_c: float | None
    converter_temp_c: float | None
    vibration_mm_s: float | None
    pitch_hydraulic_pressure_bar: float | None


class History(BaseModel):
    turbine_id: str
    start: datetime
    end: datetime
    last_data: datetime | None = Field(
        description="The turbine's last data time (default end of the window)."
    )
    bucket: str = Field(examples=["1h"])
    bucket_seconds: int
    scores: list[ScorePoint]
    telemetry: list[TelemetryPoint]


class DayCounts(BaseModel):
    day: datetime
    counts: dict[str, int]


class FleetSummary(BaseModel):
    turbines: int
    tiers: dict[str, int] = Field(
        examples=[{"critical": 2, "high": 5, "moderate": 20, "low": 70, "unknown": 3}]
    )
    stale: int
    stale_share: float
    scorer_stale: bool
    mode: FleetMode
    data_as_of: datetime | None
    message: str | None
    sites: list[SiteClockOut]
    daily: list[DayCounts]
    last_sweep: SweepRun | None
    generated_at: datetime


class RunPage(BaseModel):
    items: list[SweepRun]
    next_cursor: str | None


class LogEntry(BaseModel):
    time: datetime
    operation: str
    turbines: int
    events: int
    status: str
    duration_ms: float
    model_version: str | None
    worker_id: str | None
    error: str | None


class RunDetail(BaseModel):
    run: SweepRun
    assessments: int
    tier_counts: dict[str, int]
    score_avg: float | None
    score_max: float | None
    log: list[LogEntry]


class SweepAccepted(BaseModel):
    run_id: UUID
    status: Literal["requested"] = "requested"
    link: str = Field(examples=["/v1/runs/6f1c3b8e-5d0a-4c53-9a77-0e0b6c1d2f41"])
    requested_at: datetime


class Heartbeat(BaseModel):
    worker_id: str
    updated_at: datetime
    age_seconds: float
    started_at: datetime
    model_version: str | None
    events_per_minute: float
    lag_messages: int
    lag_seconds: float
    ready: bool | None = Field(description="The worker's own readiness; null when it did not say.")
    problems: list[str] = Field(description="Why it is not ready, as the worker wrote it.")
    partitions: dict[str, int] = Field(description="Assigned partition -> lag (messages).")


class DriftFeature(BaseModel):
    feature: str = Field(examples=["ambient_temp_c__mean_24h"])
    psi: float = Field(description="Population stability index against the model version's reference.")
    ks: float | None = Field(description="Binned Kolmogorov-Smirnov statistic (finite values).")
    chance_psi: float = Field(description="PSI as many healthy training turbines reach by chance.")
    severity: Literal["none", "moderate", "significant"]


class DriftSite(BaseModel):
    site_id: str = Field(description="Site id, or '*' for the worker's whole population.")
    rows: int = Field(description="Sampled feature rows in the drift window.")
    turbines: int = Field(description="Turbines the rows come from.")
    status: Literal["ok", "moderate", "drift", "insufficient_data"]
    max_psi: float | None = None
    severities: dict[str, int] = Field(default_factory=dict, description="Features per severity.")
    features: list[DriftFeature] = Field(
        default_factory=list, description="Drifting features (moderate or significant), else the top 10."
    )


class DriftRun(BaseModel):
    worker_id: str
    computed_at: datetime
    model_version: str | None
    status: Literal["ok", "moderate", "drift", "insufficient_data", "not_available"]
    detail: str
    window_rows: int
    sites: list[DriftSite]


class DriftSection(BaseModel):
    status: Literal["ok", "moderate", "drift", "insufficient_data", "not_available", "never_computed"] = (
        Field(description="Worst status of the workers' latest runs (last day); never_computed: none.")
    )
    detail: str = Field(examples=["max PSI 1.84 (ambient_temp_c__mean_24h, site SITE-B); 12 significant"])
    runs: list[DriftRun] = Field(description="Latest run of each worker (each covers its own partitions).")


class Supervision(BaseModel):
    heartbeats: list[Heartbeat]
    scorer_ready: bool = Field(description="At least one live worker and none says it is not ready.")
    scorer_status: str = Field(examples=["not ready: no partition assigned while telemetry.v1 has 6"])
    data: DataClock
    problems: list[str] = Field(examples=[["SITE-A: no data for 45 min"]])
    events_per_minute: float
    max_lag_seconds: float | None
    scorer_stale: bool
    last_sweep: SweepRun | None
    high_critical_daily: list[DayCounts]
    batches_last_hour: int
    errors_last_hour: int
    generated_at: datetime
    drift: DriftSection = Field(description="Feature drift against the production model's reference.")


class Check(BaseModel):
    ok: bool
    detail: str


class Readiness(BaseModel):
    ready: bool
    checks: dict[str, Check]


class ErrorBody(BaseModel):
    detail: str = Field(examples=["turbine 'WT-999' not found"])
    reason: str | None = None
