"""Checkpointed windows as a restore reads them: a chunk of rows in columns, the window states packed.

Why columns: the streamed restore read (``scorer.sink.Sink.load_partitions_streamed``) hands over
~1,000 rows at a time to the compute thread. Kept as one ``StoredWindow`` per row, each window state
stayed a separate ``bytes`` (7.7 KB) until its chunk was decoded, and the decode then joined them into
one more buffer: three copies of every state in fresh memory, most of a cold restore's page faults.
Here each state is copied once, as its row arrives, into the chunk's buffer
(:class:`models.window_store.StatePacker`), and the window kernel decodes straight from it.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass

from models.window_store import PackedStates
from scorer.ports import StoredWindow


@dataclass(frozen=True, slots=True)
class StoredChunk:
    """Rows of ``scorer_windows`` read together: row ``i`` is (``turbine_ids[i]``, ``site_ids[i]``,
    ``partitions[i]``, state ``states[i]``, ``aux[i]``). Iterating gives :class:`StoredWindow` rows
    (each state copied out: for callers that want rows, not for the restore's fast path)."""

    turbine_ids: list[str]
    site_ids: list[str]
    partitions: list[int]
    states: PackedStates
    aux: list[bytes]

    def __post_init__(self) -> None:
        n = len(self.turbine_ids)
        if not len(self.site_ids) == len(self.partitions) == len(self.states) == len(self.aux) == n:
            raise ValueError(
                f"StoredChunk: {n} turbine ids, {len(self.site_ids)} sites, {len(self.partitions)} "
                f"partitions, {len(self.states)} states, {len(self.aux)} aux"
            )

    def __len__(self) -> int:
        return len(self.turbine_ids)

    def __iter__(self) -> Iterator[StoredWindow]:
        for i, tid in enumerate(self.turbine_ids):
            yield StoredWindow(tid, self.site_ids[i], self.partitions[i], self.states[i], self.aux[i])
