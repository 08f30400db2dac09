"""Rows the scorer writes to PostgreSQL, typed once: each dataclass generates its column list.

Why here (common, no psycopg): the scorer's sink builds its statements from these classes, the API reads
the same columns by name (``ASSESSMENT_COLUMNS``, ``TELEMETRY_AGG_SIGNALS``), and the test seeds write
them; no second list of columns exists anywhere. Each field carries its PostgreSQL type
(``field(metadata=TEXT)`` ...) so that a sink can send one typed array per column
(``INSERT ... SELECT * FROM unnest(...)``) without a table description of its own.

Use: ``HistoryRow.COLUMNS`` (column names in order), ``HistoryRow.PG_TYPES`` (same order),
``HistoryRow.TABLE``, ``row.values()`` (the tuple to write, in ``COLUMNS`` order).

Rows are values: build them, never change them. They are not ``frozen`` dataclasses because a frozen
one costs four times as much to build (1.9 against 0.5 us for a 12-column row: each field goes
through ``object.__setattr__``), and the stream builds one aggregate row per 10-minute reading
(bench/bench_processing.py).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field, fields
from datetime import datetime
from operator import attrgetter
from typing import Any, ClassVar, TypeVar

R = TypeVar("R", bound="Row")


#: ``field(metadata=...)`` of a column of each PostgreSQL type (the sink casts its arrays to it).
TEXT = {"pg": "text"}
FLOAT8 = {"pg": "float8"}
INT4 = {"pg": "int4"}
INT8 = {"pg": "int8"}
TIMESTAMPTZ = {"pg": "timestamptz"}
JSONB = {"pg": "jsonb"}
BYTEA = {"pg": "bytea"}
UUID = {"pg": "uuid"}


class Row:
    """Base of every row: table name, columns and types derived from the dataclass fields."""

    __slots__ = ()
    TABLE: ClassVar[str] = ""
    COLUMNS: ClassVar[tuple[str, ...]] = ()
    PG_TYPES: ClassVar[tuple[str, ...]] = ()
    _getter: ClassVar[Callable[[Any], Any]]

    def values(self) -> tuple[Any, ...]:
        """The row's values in ``COLUMNS`` order (what a COPY or an array parameter takes)."""
        out = type(self)._getter(self)
        return out if isinstance(out, tuple) else (out,)


def columns(cls: type[Any]) -> tuple[str, ...]:
    """Field names of a row dataclass (or of a group of columns such as :class:`AssessmentValues`)."""
    return tuple(f.name for f in fields(cls))


def table(name: str) -> Callable[[type[R]], type[R]]:
    """Class decorator (after ``@dataclass``): bind the row to ``name`` and derive its column lists."""

    def bind(cls: type[R]) -> type[R]:
        fs = fields(cls)  # type: ignore[arg-type]
        missing = [f.name for f in fs if "pg" not in f.metadata]
        if missing:
            raise TypeError(f"{cls.__name__}: fields without a PostgreSQL type: {missing}")
        cls.TABLE = name
        cls.COLUMNS = tuple(f.name for f in fs)
        cls.PG_TYPES = tuple(str(f.metadata["pg"]) for f in fs)
        cls._getter = attrgetter(*cls.COLUMNS)
        return cls

    return bind


# ---------------------------------------------------------------------------------------------- groups
@dataclass(slots=True)
class AssessmentValues:
    """The columns of one risk assessment, shared by ``score_history`` and ``turbine_state``."""

    score: float = field(metadata=FLOAT8)
    tier: str = field(metadata=TEXT)
    probability: float | None = field(metadata=FLOAT8)
    ttf_days: float | None = field(metadata=FLOAT8)
    ttf_low_days: float | None = field(metadata=FLOAT8)
    ttf_high_days: float | None = field(metadata=FLOAT8)
    model_version: str = field(metadata=TEXT)
    run_id: str | None = field(metadata=UUID)


@dataclass(slots=True)
class AggSignals:
    """Signal columns of ``telemetry_agg`` (10-minute means; None: no reading in the bucket)."""

    wind_speed_ms: float | None = field(metadata=FLOAT8)
    power_kw: float | None = field(metadata=FLOAT8)
    ambient_temp_c: float | None = field(metadata=FLOAT8)
    gearbox_bearing_temp_c: float | None = field(metadata=FLOAT8)
    generator_winding_temp_c: float | None = field(metadata=FLOAT8)
    main_bearing_temp_c: float | None = field(metadata=FLOAT8)
    converter_temp_c: float | None = field(metadata=FLOAT8)
    vibration_mm_s: float | None = field(metadata=FLOAT8)
    pitch_hydraulic_pressure_bar: float | None = field(metadata=FLOAT8)


#: Columns of one risk assessment (the API reads them by name from either table).
ASSESSMENT_COLUMNS: tuple[str, ...] = columns(AssessmentValues)
#: Signal columns of ``telemetry_agg``, in table order: the scorer writes them, the API reads them.
TELEMETRY_AGG_SIGNALS: tuple[str, ...] = columns(AggSignals)


# ---------------------------------------------------------------------------------------------- rows
@table("turbines")
@dataclass(slots=True)
class TurbineSeenRow(Row):
    """A turbine seen by the stream: its site and newest event time (``GREATEST`` on write)."""

    turbine_id: str = field(metadata=TEXT)
    site_id: str = field(metadata=TEXT)
    last_event_time: datetime | None = field(metadata=TIMESTAMPTZ)


@table("telemetry_latest")
@dataclass(slots=True)
class LatestRow(Row):
    """The newest reading of a turbine (written only when newer than the stored one)."""

    turbine_id: str = field(metadata=TEXT)
    event_time: datetime = field(metadata=TIMESTAMPTZ)
    measurements: str = field(metadata=JSONB)  # JSON text
    status_code: int = field(metadata=INT4)


@table("telemetry_agg")
@dataclass(slots=True)
class AggRow(AggSignals, Row):
    """One 10-minute bucket of one turbine: whole values (idempotent upsert); the signals come first."""

    bucket: datetime = field(metadata=TIMESTAMPTZ)
    turbine_id: str = field(metadata=TEXT)
    samples: int = field(metadata=INT4)

    @classmethod
    def of(cls, bucket: datetime, turbine_id: str, samples: int, means: Sequence[float | None]) -> AggRow:
        """From the means in :data:`TELEMETRY_AGG_SIGNALS` order."""
        values = dict(zip(TELEMETRY_AGG_SIGNALS, means, strict=True))
        return cls(bucket=bucket, turbine_id=turbine_id, samples=samples, **values)


@table("score_history")
@dataclass(slots=True)
class HistoryRow(AssessmentValues, Row):
    """One assessment in the history (``ON CONFLICT DO NOTHING`` on turbine, time, trigger)."""

    time: datetime = field(metadata=TIMESTAMPTZ)
    turbine_id: str = field(metadata=TEXT)
    trigger: str = field(metadata=TEXT)
    reasons: str = field(metadata=JSONB)  # JSON text
    data_quality: str = field(metadata=JSONB)  # JSON text
    calibration_version: str | None = field(metadata=TEXT)  # lineage (migration 0008)


@table("turbine_state")
@dataclass(slots=True)
class StateRow(AssessmentValues, Row):
    """The current assessment of a turbine (never regresses in ``last_event_time``)."""

    turbine_id: str = field(metadata=TEXT)
    site_id: str = field(metadata=TEXT)
    as_of: datetime = field(metadata=TIMESTAMPTZ)
    trigger: str = field(metadata=TEXT)
    reasons: str = field(metadata=JSONB)  # JSON text
    data_quality: str = field(metadata=JSONB)  # JSON text
    last_event_time: datetime | None = field(metadata=TIMESTAMPTZ)
    calibration_version: str | None = field(metadata=TEXT)  # lineage (migration 0008)


@table("scorer_windows")
@dataclass(slots=True)
class WindowRow(Row):
    """Checkpoint of one turbine's window and bookkeeping."""

    consumer_group: str = field(metadata=TEXT)
    turbine_id: str = field(metadata=TEXT)
    site_id: str = field(metadata=TEXT)
    topic: str = field(metadata=TEXT)
    partition: int = field(metadata=INT4)
    last_event_time: datetime | None = field(metadata=TIMESTAMPTZ)
    state: bytes = field(metadata=BYTEA)  # models.features.FeatureWindow.to_bytes()
    aux: bytes = field(metadata=BYTEA)  # scorer.state.TurbineState.aux_bytes()


@table("scorer_offsets")
@dataclass(slots=True)
class OffsetRow(Row):
    """Next offset to consume of one partition (checkpointed with the windows)."""

    consumer_group: str = field(metadata=TEXT)
    topic: str = field(metadata=TEXT)
    partition: int = field(metadata=INT4)
    next_offset: int = field(metadata=INT8)


@table("scorer_dead_letters")
@dataclass(slots=True)
class DeadLetterRow(Row):
    """A dead letter the topic did not take, durable with its batch (re-published later)."""

    consumer_group: str = field(metadata=TEXT)
    source_topic: str = field(metadata=TEXT)
    source_partition: int = field(metadata=INT4)  # -1: unknown
    source_offset: int = field(metadata=INT8)  # -1: unknown
    code: str = field(metadata=TEXT)
    reason: str = field(metadata=TEXT)
    record_key: bytes | None = field(metadata=BYTEA)
    envelope: bytes = field(metadata=BYTEA)


ALL_ROWS: tuple[type[Row], ...] = (
    TurbineSeenRow,
    LatestRow,
    AggRow,
    HistoryRow,
    StateRow,
    WindowRow,
    OffsetRow,
    DeadLetterRow,
)
