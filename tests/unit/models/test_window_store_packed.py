"""States packed in one buffer (``PackedStates``, ``StatePacker``: what a restore's read hands over) load
exactly as the same states given one ``bytes`` each: the same rows, the same errors naming the same
turbines, old formats and turbines already held through ``load``; a packer's buffer given back is reused
and still loads the same rows; offsets outside the buffer are refused."""

from __future__ import annotations

from datetime import UTC, datetime

import numpy as np
import pytest

from models.window_store import _HEADER4, PackedStates, StatePacker, WindowStore
from tests.unit.models.test_window_store_restore_threads import _source

pytestmark = pytest.mark.unit

T0 = datetime(2024, 5, 1, tzinfo=UTC).timestamp()


def _blobs(n: int, seed: int = 11) -> list[bytes]:
    return _source(n, seed)[2]


def _rows(store: WindowStore, ids: list[str]) -> list[bytes]:
    rows = [store.row_of(t) for t in ids]
    return [b"" if r is None else store.to_bytes(r) for r in rows]


def _packed(blobs: list[bytes], capacity: int = 1 << 12) -> PackedStates:
    packer = StatePacker(capacity)
    for b in blobs:
        packer.add(b)
    return packer.take()


def _bad_header(blob: bytes) -> bytes:
    """A format-4 state whose header says 13 bins."""
    return blob[:6] + (13).to_bytes(2, "little") + blob[8:]


def test_packed_states_load_as_separate_bytes() -> None:
    blobs = _blobs(300)
    ids = [f"T{i}" for i in range(300)]
    ids[7] = ids[3]  # an id given twice: its last state counts, as with bytes
    plain, packed = WindowStore(1), WindowStore(1)
    held = "T100"  # held already: goes through load() in both
    for st in (plain, packed):
        st.load(held, blobs[0])
    got_plain = plain.load_many(ids, blobs, overlap=lambda r: None)
    states = _packed(blobs)
    assert len(states) == 300 and [states[i] for i in range(300)] == blobs
    got_packed = packed.load_many(ids, states, overlap=lambda r: None)
    assert got_packed.tolist() == got_plain.tolist()
    assert _rows(packed, ids) == _rows(plain, ids)
    assert _rows(packed, [held]) == _rows(plain, [held])


def test_packed_states_report_bad_states_as_bytes_do() -> None:
    blobs = _blobs(40)
    blobs[5] = _bad_header(blobs[5])
    blobs[9] = b"\x00junk"  # not format 4: load() refuses it
    blobs[12] = blobs[12][: _HEADER4.size - 3]  # shorter than a header
    ids = [f"T{i}" for i in range(40)]
    outcomes: list[object] = []
    for states in (blobs, _packed(blobs)):
        store = WindowStore(1)
        errors: list[tuple[int, str]] = []
        got = store.load_many(ids, states, errors=errors)
        outcomes.append((got.tolist(), sorted(errors), _rows(store, ids)))
        with pytest.raises(ValueError) as exc:
            WindowStore(1).load_many(ids, states)
        outcomes.append(str(exc.value))
    assert outcomes[0] == outcomes[2]
    assert outcomes[1] == outcomes[3]
    errors = outcomes[0][1]  # type: ignore[index]
    assert {i for i, _m in errors} == {5, 9, 12}
    assert all(f"T{i}" in m for i, m in errors)


def test_packer_grows_and_reuses_a_buffer_given_back() -> None:
    blobs = _blobs(96)
    packer = StatePacker(100)  # smaller than one state: grows
    chunks = []
    for k in range(3):
        for b in blobs[32 * k : 32 * (k + 1)]:
            packer.add(b)
        chunks.append(packer.take())
        if k == 0:
            assert [chunks[0][i] for i in range(32)] == blobs[:32]
            given = chunks[0]._spare[1] if chunks[0]._spare is not None else None
            chunks[0].release()
            chunks[0].release()  # twice: no effect
    assert chunks[2].buf.base is given  # the buffer given back serves a later chunk
    for k in (1, 2):
        store = WindowStore(1)
        ids = [f"S{i}" for i in range(32 * k, 32 * (k + 1))]
        store.load_many(ids, chunks[k], overlap=lambda r: None)
        assert _rows(store, ids) == blobs[32 * k : 32 * (k + 1)]
    assert len(packer.take()) == 0


def test_packed_states_refuse_offsets_outside_their_buffer() -> None:
    buf = np.zeros(10, dtype=np.uint8)
    with pytest.raises(ValueError, match="outside"):
        PackedStates(buf, np.array([0, 8]), np.array([4, 12]))
    with pytest.raises(ValueError, match="outside"):
        PackedStates(buf, np.array([5]), np.array([4]))
    with pytest.raises(ValueError, match="uint8"):
        PackedStates(buf.astype(np.int64), np.array([0]), np.array([4]))
    assert PackedStates(buf, np.array([], dtype=np.int64), np.array([], dtype=np.int64)).v4() == []
