"""A partition restore leaves the cyclic gc on, with what it restored out of the gc's generations."""

from __future__ import annotations

import asyncio
import gc
from pathlib import Path

import pytest

from tests.unit.scorer.fakes import FakeSink
from tests.unit.scorer.runtime_helpers import events, make_runtime
from tests.unit.scorer.test_restore_pipeline import StreamingSink, _checkpointed

pytestmark = pytest.mark.unit


@pytest.mark.parametrize("sink_class", [FakeSink, StreamingSink])
def test_restore_freezes_what_it_restored_and_resumes_the_gc(tmp_path: Path, sink_class: type) -> None:
    sink = sink_class()
    _checkpointed(sink, tmp_path)
    rt, _ = make_runtime(tmp_path, sink)
    gc.unfreeze()
    try:
        assert gc.isenabled()
        asyncio.run(rt.checkpointer.restore_partitions([0]))
        assert gc.isenabled()
        assert len(rt.processor.turbines) == 7
        assert gc.get_freeze_count() > 0
        tracked = {id(o) for o in gc.get_objects()}  # generations only: frozen objects are not listed
        for st in rt.processor.turbines.values():
            assert id(st) not in tracked
        # the stream goes on as after any restore
        asyncio.run(rt.handle_batch(events([("WT-0", 100)])))
    finally:
        rt.close()
        gc.unfreeze()
