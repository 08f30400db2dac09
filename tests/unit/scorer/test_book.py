"""The per-turbine bookkeeping columns (scorer/book.py) behind TurbineState: exact dedup memory, the
bucket pool, rows reused, a state moved into the worker's store."""

from __future__ import annotations

import math
import random
import uuid
from array import array

import pytest

from models.features import FeatureWindow
from models.window_store import WindowStore
from scorer.book import BUCKET_WIDTH, INLINE_IDS, Book, book_for, pack_id, unpack_id
from scorer.coalescing import RescoreMark
from scorer.state import HistoryMark, TurbineState

pytestmark = pytest.mark.unit


def test_only_canonical_uuid_ids_are_packed_and_they_come_back_exactly() -> None:
    rng = random.Random(3)
    for _ in range(500):
        eid = str(uuid.UUID(int=rng.getrandbits(128)))
        raw = pack_id(eid)
        assert raw is not None and len(raw) == 16 and unpack_id(raw) == eid
    u = str(uuid.uuid4())
    for other in (
        u.upper(),
        u.replace("-", ""),
        "{" + u[1:] + "}",
        u[:-1] + " ",
        " " + u[1:],
        "a" * 36,
        "x",
        "",
    ):
        assert pack_id(other) is None, other
    assert pack_id(u[:8] + "-" + u[9:13] + "-" + u[14:18] + "-" + u[19:23] + "-" + u[24:]) is not None
    alphabet = "0123456789abcdefABCDEF-_.: g"
    for _ in range(5_000):  # near-uuids: whatever is packed comes back as the same string
        chars = list(str(uuid.UUID(int=rng.getrandbits(128))))
        for _ in range(rng.randint(0, 2)):
            chars[rng.randrange(36)] = rng.choice(alphabet)
        eid = "".join(chars)
        raw = pack_id(eid)
        assert raw is None or unpack_id(raw) == eid, eid


def _state(tid: str = "WT-1") -> TurbineState:
    return TurbineState(tid, "S", 0, FeatureWindow(tid))


def test_dedup_is_exact_inline_or_not() -> None:
    """Ids inline (uuids, few) and in a dict (other ids, or more than fit) give the same verdicts."""
    rng = random.Random(7)
    for kind in ("uuid", "other", "mixed"):
        st = _state()
        seen: dict[str, float] = {}
        t = 1_800_000_000.0
        for k in range(400):
            t += rng.choice([60.0, 600.0, 3600.0, 7200.0])
            if kind == "uuid" or (kind == "mixed" and k % 3):
                eid = str(uuid.UUID(int=rng.getrandbits(128)))
            else:
                eid = f"id-{k}"
            st.accept(eid, t, 3600.0)
            seen[eid] = t
            st.compact(3600.0)
            want = {e: ts for e, ts in seen.items() if ts > st.last_ts - 3600.0}
            if kind == "uuid" and len(want) <= INLINE_IDS:
                assert st._ids is None  # kept inline between batches
            if kind == "other":
                assert st._ids is not None
            recent = st.recent
            assert want.items() <= recent.items()  # every id a re-send could still reach: a duplicate
            assert recent.items() <= seen.items()  # nothing else, same times


def test_more_ids_than_fit_inline_stay_a_dict_and_go_back_inline_when_few() -> None:
    st = _state()
    ids = [str(uuid.uuid4()) for _ in range(INLINE_IDS + 3)]
    for k, eid in enumerate(ids):
        st.accept(eid, 1000.0 + k, 3600.0)
    st.compact(3600.0)
    assert st._ids is not None and list(st.recent) == ids
    st.accept(str(uuid.uuid4()), 1000.0 + 10 * 3600.0, 3600.0)
    st.compact(3600.0)
    assert st._ids is None and len(st.recent) == 1


def test_buckets_keep_their_creation_order_and_free_slots_are_reused() -> None:
    book = Book()
    book.reset(0)
    book.reset(1)
    for b in (1200, 600, 1800):
        slot = book.add_bucket(0, b)  # (may grow the pool: b_data read after)
        book.b_data[slot] = float(b)
    slot = book.add_bucket(1, 600)
    book.b_data[slot] = 1.0
    assert [s for s, _ in book.bucket_items(0)] == [1200, 600, 1800]
    assert book.bucket_min(0) == 600 and book.bucket_min(1) == 600 and book.bucket_min(2) == math.inf
    book.drop_buckets(0, 1500, {600})
    assert [s for s, _ in book.bucket_items(0)] == [600, 1800]
    used = len(book.b_start)
    book.reset(0)  # a row reused: its buckets are freed, nothing else is touched
    assert book.bucket_items(0) == [] and [s for s, _ in book.bucket_items(1)] == [600]
    for b in range(3):
        book.add_bucket(2, b)
    assert len(book.b_start) == used  # freed slots reused, the pool did not grow
    assert book.bucket_items(1)[0][1] == array("d", [1.0] * BUCKET_WIDTH)


def test_a_reused_row_starts_empty() -> None:
    store = WindowStore()
    st = TurbineState("WT-A", "S1", 2, store.window("WT-A"))
    st.accept(str(uuid.uuid4()), 5000.0, 3600.0)
    st.late, st.duplicates, st.pending, st.last_tier = 3, 4, True, "high"
    st.history = HistoryMark(5000.0, 0.5, "high")
    st.rescore = RescoreMark(5000.0, 1)
    st.compact(3600.0)
    row = st.window.row
    store.remove(["WT-A"])
    fresh = TurbineState("WT-B", "S2", 1, store.window("WT-B"))
    assert fresh.window.row == row
    assert (fresh.last_ts, fresh.late, fresh.duplicates, fresh.pending, fresh.last_tier) == (
        -math.inf,
        0,
        0,
        False,
        None,
    )
    assert fresh.history is None and fresh.rescore is None and fresh.recent == {} and fresh.agg == {}
    assert (fresh.site_id, fresh.partition) == ("S2", 1)


def test_a_state_moved_into_a_store_keeps_everything() -> None:
    st = _state("WT-M")
    for k in range(5):
        st.accept(str(uuid.uuid4()), 1000.0 + 60 * k, 3600.0)
    st.accept("not-a-uuid", 1400.0, 3600.0)
    st.history = HistoryMark(1300.0, 0.25, "low")
    st.rescore = RescoreMark(1300.0, 0)
    st.late = 2
    before = (st.aux_bytes(), st.recent.copy(), st.agg)
    store = WindowStore()
    store.window("WT-OTHER")
    store.load("WT-M", st.window.to_bytes())
    st.window = store.window("WT-M")
    assert st._book is book_for(store) and st.window.store is store
    assert (st.aux_bytes(), st.recent, st.agg) == before


def test_a_mostly_free_bucket_pool_is_repacked_with_every_list_intact() -> None:
    """After a batch's peak of buckets is pruned, the pool shrinks; each row keeps its buckets (values,
    order), the free list works, and a pool still a quarter used is left alone."""
    rng = random.Random(7)
    book = Book()
    rows = 300
    for r in range(rows):
        book.reset(r)
    expected: dict[int, list[tuple[int, list[float]]]] = {}
    for r in range(rows):  # a backlog: 20 buckets per row
        for k in range(20):
            start = 600 * (k + 1)
            slot = book.add_bucket(r, start)
            values = [rng.random() for _ in range(BUCKET_WIDTH)]
            book.b_data[slot] = values
            expected.setdefault(r, []).append((start, values))
    peak = len(book.b_start)
    assert peak >= rows * 20 and not book.shrink_buckets()  # full: nothing to do
    for r in range(rows):  # the prune after the batch: keep the newest one or two (some rows none)
        keep = r % 3
        book.drop_buckets(r, 600 * (20 - keep) + 1, ())
        expected[r] = expected[r][20 - keep :]
    assert book.shrink_buckets()
    assert len(book.b_start) < peak // 4
    for r in range(rows):
        got = book.bucket_items(r)
        assert [s for s, _ in got] == [s for s, _ in expected[r]]
        assert [list(v) for _, v in got] == [v for _, v in expected[r]]
        assert book.bucket_min(r) == (expected[r][0][0] if expected[r] else math.inf)
    # new buckets after the repack: from the free list, at the end of each row's list
    for r in range(rows):
        slot = book.add_bucket(r, 10**6)
        book.b_data[slot] = float(r)
    for r in range(rows):
        got = book.bucket_items(r)
        assert [s for s, _ in got] == [s for s, _ in expected[r]] + [10**6]
        assert got[-1][1] == array("d", [float(r)] * BUCKET_WIDTH)
    assert not book.shrink_buckets()  # well used now


def test_the_processor_repacks_the_pool_after_a_backlog_batch() -> None:
    """A 20-readings-per-turbine batch (10-minute data, one hour of it per turbine kept open) leaves
    the pool at the size of what the prune kept, not of the batch's peak."""
    from datetime import UTC, datetime, timedelta

    import orjson

    from common.contracts import SIGNALS
    from scorer.processing import BatchProcessor, RawRecord
    from scorer.settings import ScorerSettings

    proc = BatchProcessor(ScorerSettings())
    start = datetime.now(UTC) - timedelta(days=2)
    records = []
    for k in range(40):  # 40 readings, 10 min apart, for each of 300 turbines
        when = (start + timedelta(minutes=10 * k)).isoformat()
        for t in range(300):
            tid = f"WT-{t:03d}"
            body = {
                "schema_version": 1,
                "event_id": str(uuid.UUID(int=k * 1000 + t)),
                "turbine_id": tid,
                "site_id": "SITE-A",
                "event_time": when,
                **{name: 1.0 for name in SIGNALS},
                "status_code": 0,
            }
            records.append(RawRecord(0, len(records), None, orjson.dumps(body), "t", tid.encode()))
    proc.process(records)
    book = book_for(proc.store)
    live = sum(len(book.bucket_items(proc.store.row_of(f"WT-{t:03d}"))) for t in range(300))  # type: ignore[arg-type]
    assert 300 <= live <= 300 * 8  # the buckets within the tolerance (1 h) stay
    assert len(book.b_start) <= live + live // 4 + 256
