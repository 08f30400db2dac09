"""The worker's per-turbine bookkeeping in columns: one array per field, indexed by the turbine's row
in its ``models.window_store.WindowStore`` (``scorer.state.TurbineState`` is a thin view on a row).

Why: kept as one Python object per field and turbine (floats, marks, dicts, bucket arrays, ids),
the bookkeeping was ~1.8 KB of live objects per turbine, and because those objects were replaced at
every event among the batch's temporaries, each one kept a 16 KiB pool of CPython's allocator (and
its 1 MiB arena) alive: 9.4 KB per turbine at 10,000 turbines (docs/performance.md). Here a turbine
costs a few hundred bytes of arrays, and no Python object is born per event that outlives its batch.

* scalars (newest event time, late/duplicate counts, tier, history mark, rescore mark, newest
  status, pending, partition, site): ``array.array`` columns (a Python float or int on read, exact);
  strings (site, tier) as codes into a process-wide table (a fleet has few of each);
* 10-minute aggregate buckets: a pool of ``BUCKET_WIDTH``-double rows, each turbine's buckets a
  linked list in creation order (the order the checkpoint writes them);
* recent event ids (the dedup memory): up to ``INLINE_IDS`` per turbine inline, each a canonical
  lowercase uuid string packed in its 16 bytes (the string is rebuilt from them: dedup stays exact);
  a turbine with more ids, or with any other id, keeps a dict on its ``TurbineState`` instead.

Rows are the store's (stable; a removed turbine's row is reused: :meth:`Book.reset` clears it). One
``TurbineState`` per row: two states on one row share this bookkeeping.
"""

from __future__ import annotations

import math
import threading
import weakref
from array import array
from collections.abc import Iterable
from typing import Any

import numpy as np

#: Doubles per 10-minute bucket: samples, the sums, then the counts of ``AGG_SIGNALS``.
BUCKET_WIDTH = 1 + 2 * 9
#: The bucket pool is repacked (:meth:`Book.shrink_buckets`) only from this many slots (~0.7 MB).
SHRINK_MIN_SLOTS = 4096
#: Recent ids kept inline per turbine (10-minute data within the default 1-h tolerance holds <= 7).
INLINE_IDS = 8
_ID_BYTES = 16
_NONE = -1

# (typecode, fill) of each scalar column
_COLUMNS: dict[str, tuple[str, float | int]] = {
    "last_ts": ("d", -math.inf),
    "compacted_at": ("d", -math.inf),
    "late": ("q", 0),
    "dup": ("q", 0),
    "tier": ("i", _NONE),
    "hist_ts": ("d", 0.0),
    "hist_score": ("d", 0.0),
    "hist_tier": ("i", _NONE),  # _NONE: no history mark
    "rs_ts": ("d", 0.0),
    "rs_status": ("q", 0),
    "has_rs": ("b", 0),
    "newest_status": ("q", 0),
    "pending": ("b", 0),
    "partition": ("q", 0),
    "site": ("i", _NONE),
    "bucket_head": ("i", _NONE),
    "bucket_tail": ("i", _NONE),
    "n_ids": ("b", 0),
}

#: each scalar column's value in a reset row (``Book.reset``)
DEFAULTS: dict[str, float | int] = {name: fill for name, (_code, fill) in _COLUMNS.items()}

_TEXT: list[str] = []
_CODE: dict[str, int] = {}
_TEXT_LOCK = threading.Lock()


def text_code(text: str) -> int:
    """The process-wide code of a site or tier string (codes are never reused)."""
    code = _CODE.get(text)
    if code is None:
        with _TEXT_LOCK:
            code = _CODE.get(text)
            if code is None:
                code = len(_TEXT)
                _TEXT.append(text)
                _CODE[text] = code
    return code


def text_of(code: int) -> str:
    return _TEXT[code]


def pack_id(event_id: str) -> bytes | None:
    """The 16 bytes of a canonical lowercase uuid string (``unpack_id`` gives it back exactly), else
    None (any other id is kept as a string)."""
    if len(event_id) != 36 or event_id[8] != "-" or event_id[13] != "-" or event_id[18] != "-":
        return None
    if event_id[23] != "-" or event_id.lower() != event_id:  # (fromhex takes upper case too)
        return None
    try:
        raw = bytes.fromhex(event_id[:8] + event_id[9:13] + event_id[14:18] + event_id[19:23] + event_id[24:])
    except ValueError:
        return None
    return raw if len(raw) == _ID_BYTES else None  # (fromhex skips whitespace: then fewer bytes)


def unpack_id(raw: bytes) -> str:
    h = raw.hex()
    return f"{h[:8]}-{h[8:12]}-{h[12:16]}-{h[16:20]}-{h[20:]}"


class Book:
    """Bookkeeping columns of the turbines of one store (see the module docstring)."""

    def __init__(self) -> None:
        self.cap = 0
        for name, (code, _fill) in _COLUMNS.items():
            setattr(self, name, array(code))
        self.id_bytes = bytearray()
        self.id_ts = array("d")
        # bucket pool: start (epoch s), next slot (_NONE ends a list), the doubles
        self.b_start = array("q")
        self.b_next = array("i")
        self.b_data = np.empty((0, BUCKET_WIDTH), dtype=np.float64)
        self._b_free = _NONE
        self._b_live = 0  # slots in use (the rest are on the free list)
        self.row_ints: list[int] = []  # the row numbers as ints made at growth (kept by the states)
        # (column, default) pairs for reset(): the columns grow in place, never replaced
        self._defaults = [(getattr(self, name), fill) for name, (_code, fill) in _COLUMNS.items()]

    # ---------------------------------------------------------------- rows
    def ensure(self, row: int) -> None:
        """Room for ``row`` (grown by a quarter at least: amortised, little slack)."""
        if row < self.cap:
            return
        new = max(row + 1, self.cap + self.cap // 4 + 64)
        extra = new - self.cap
        # (an array repeated, not a list of Python values: 10,000 rows in ~1 ms, not 12-17)
        for name, (code, fill) in _COLUMNS.items():
            getattr(self, name).extend(array(code, [fill]) * extra)
        self.id_bytes.extend(bytes(extra * INLINE_IDS * _ID_BYTES))
        self.id_ts.extend(array("d", [0.0]) * (extra * INLINE_IDS))
        self.row_ints.extend(range(self.cap, new))
        self.cap = new

    def reset(self, row: int) -> None:
        """``row`` as a new turbine's: every column at its default, its buckets freed."""
        self.ensure(row)
        if self.bucket_head[row] != _NONE:  # type: ignore[attr-defined]
            self.free_buckets(row)
        for column, fill in self._defaults:
            column[row] = fill

    def reset_many(self, rows: list[int], values: dict[str, list[Any]]) -> None:
        """:meth:`reset` of every row of ``rows``, then each column named in ``values`` set to its
        list (one value per row, in ``rows`` order): a restore's bookkeeping a column at a time, not
        a row at a time. Rows in one ascending run (a fresh restore's) are written as one slice."""
        if not rows:
            return
        self.ensure(max(rows))
        heads = self.bucket_head  # type: ignore[attr-defined]
        for r in rows:
            if heads[r] != _NONE:
                self.free_buckets(r)
        n = len(rows)
        lo = rows[0]
        run = rows == list(range(lo, lo + n))
        for name, (code, fill) in _COLUMNS.items():
            column = getattr(self, name)
            given = values.get(name)
            if run:
                column[lo : lo + n] = array(code, given) if given is not None else array(code, [fill]) * n
            elif given is None:
                for r in rows:
                    column[r] = fill
            else:
                for r, v in zip(rows, given, strict=True):
                    column[r] = v

    # ---------------------------------------------------------------- recent ids
    def ids(self, row: int) -> dict[str, float]:
        """The inline recent ids of ``row`` (id -> event time), in the order they were kept."""
        n = self.n_ids[row]  # type: ignore[attr-defined]
        if not n:
            return {}
        base = row * INLINE_IDS
        buf = self.id_bytes
        ts = self.id_ts
        out: dict[str, float] = {}
        for k in range(base, base + n):
            o = k * _ID_BYTES
            out[unpack_id(bytes(buf[o : o + _ID_BYTES]))] = ts[k]
        return out

    def park_ids(self, row: int, recent: dict[str, float]) -> bool:
        """Keep ``recent`` inline when it fits (at most INLINE_IDS uuid ids); False: it does not."""
        if len(recent) > INLINE_IDS:
            return False
        packed = []
        for eid in recent:
            raw = pack_id(eid)
            if raw is None:
                return False
            packed.append(raw)
        base = row * INLINE_IDS
        buf = self.id_bytes
        ts = self.id_ts
        for k, (raw, t) in enumerate(zip(packed, recent.values(), strict=True)):
            o = (base + k) * _ID_BYTES
            buf[o : o + _ID_BYTES] = raw
            ts[base + k] = t
        self.n_ids[row] = len(packed)  # type: ignore[attr-defined]
        return True

    # ---------------------------------------------------------------- 10-minute buckets
    def _slot(self) -> int:
        slot = self._b_free
        if slot == _NONE:
            old = len(self.b_start)
            new = old + old // 4 + 256
            self.b_start.extend(_repeat(0, new - old))
            self.b_next.extend(range(old + 1, new))
            self.b_next.append(_NONE)
            data = np.empty((new, BUCKET_WIDTH), dtype=np.float64)
            data[:old] = self.b_data
            self.b_data = data
            slot = old
        self._b_free = self.b_next[slot]
        self._b_live += 1
        return slot

    def buckets(self, row: int) -> Iterable[int]:
        """Slots of ``row``'s buckets, in creation order."""
        slot = self.bucket_head[row]  # type: ignore[attr-defined]
        nxt = self.b_next
        while slot != _NONE:
            yield slot
            slot = nxt[slot]

    def find_bucket(self, row: int, start: int) -> int:
        starts = self.b_start
        tail = self.bucket_tail[row]  # type: ignore[attr-defined]
        if tail != _NONE and starts[tail] == start:  # the usual case: the newest bucket
            return tail  # type: ignore[no-any-return]
        for slot in self.buckets(row):
            if starts[slot] == start:
                return slot
        return _NONE

    def add_bucket(self, row: int, start: int) -> int:
        """A new bucket at the end of ``row``'s list (its doubles undefined: the caller writes them)."""
        slot = self._slot()
        self.b_start[slot] = start
        self.b_next[slot] = _NONE
        last = self.bucket_tail[row]  # type: ignore[attr-defined]
        if last == _NONE:
            self.bucket_head[row] = slot  # type: ignore[attr-defined]
        else:
            self.b_next[last] = slot
        self.bucket_tail[row] = slot  # type: ignore[attr-defined]
        return slot

    def bucket_min(self, row: int) -> float:
        starts = self.b_start
        return min((starts[s] for s in self.buckets(row)), default=math.inf)

    def drop_buckets(self, row: int, before: int, keep: Any) -> None:
        """Free ``row``'s buckets starting before ``before`` and not in ``keep``."""
        starts, nxt = self.b_start, self.b_next
        prev = _NONE
        slot = self.bucket_head[row]  # type: ignore[attr-defined]
        while slot != _NONE:
            follow = nxt[slot]
            b = starts[slot]
            if b < before and b not in keep:
                if prev == _NONE:
                    self.bucket_head[row] = follow  # type: ignore[attr-defined]
                else:
                    nxt[prev] = follow
                if follow == _NONE:
                    self.bucket_tail[row] = prev  # type: ignore[attr-defined]
                nxt[slot] = self._b_free
                self._b_free = slot
                self._b_live -= 1
            else:
                prev = slot
            slot = follow

    def shrink_buckets(self, min_slots: int = SHRINK_MIN_SLOTS) -> bool:
        """Repack the bucket pool when at most a quarter of it is in use; True when it did.

        Why: a batch holding many 10-minute buckets per turbine (a backlog, a history import: 20 per
        turbine for 1,000 turbines in a 20,000-event batch) grows the pool to its peak, and the prune
        after the batch leaves it mostly free but resident (3.5 MB for 1,000 turbines). Each row's
        buckets keep their order; call it between batches only (no slot number is held across it).
        """
        total = len(self.b_start)
        if total <= min_slots or self._b_live * 4 > total:
            return False
        heads, tails = self.bucket_head, self.bucket_tail  # type: ignore[attr-defined]
        nxt, starts = self.b_next, self.b_start
        order: list[int] = []
        for row in range(self.cap):
            slot = heads[row]
            if slot == _NONE:
                continue
            first = len(order)
            while slot != _NONE:
                order.append(slot)
                slot = nxt[slot]
            heads[row] = first
            tails[row] = len(order) - 1
        live = len(order)
        new = live + live // 4 + 256
        new_next = array("i", range(1, new + 1))
        for row in range(self.cap):
            last = tails[row]
            if last != _NONE:
                new_next[last] = _NONE  # each row's run of slots ends its list
        new_next[new - 1] = _NONE
        data = np.empty((new, BUCKET_WIDTH), dtype=np.float64)
        data[:live] = self.b_data[order]
        self.b_start = array("q", [starts[s] for s in order]) + array("q", [0]) * (new - live)
        self.b_next = new_next
        self.b_data = data
        self._b_free = live if live < new else _NONE
        self._b_live = live
        return True

    def free_buckets(self, row: int) -> None:
        self.drop_buckets(row, 2**62, ())

    def bucket_items(self, row: int) -> list[tuple[int, array[float]]]:
        """(start, its doubles) of ``row``'s buckets, in creation order (copies)."""
        data = self.b_data
        starts = self.b_start
        return [(starts[s], array("d", data[s].tobytes())) for s in self.buckets(row)]


def _repeat(fill: float | int, n: int) -> list[Any]:
    return [fill] * n


_BOOKS: weakref.WeakKeyDictionary[Any, Book] = weakref.WeakKeyDictionary()
_BOOKS_LOCK = threading.Lock()


def book_for(store: Any) -> Book:
    """The bookkeeping of ``store``'s turbines (made at first use, gone with the store)."""
    book = _BOOKS.get(store)
    if book is None:
        with _BOOKS_LOCK:
            book = _BOOKS.get(store)
            if book is None:
                book = _BOOKS[store] = Book()
    return book
