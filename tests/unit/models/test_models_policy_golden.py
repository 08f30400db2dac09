"""The policy gives exactly the pinned scores, tiers and reasons of ``golden/policy_*.json``.

The goldens were written from the code before the per-turbine reference path was removed (and checked
against it then); ``golden/make_policy_goldens.py`` says how, and regenerates them. Every case is compared
as JSON text: same numbers and types (0 vs 0.0), same reason texts, values, ranges and order.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from tests.unit.models.golden.make_policy_goldens import dumps, goldens, run_batch

pytestmark = pytest.mark.unit

GOLDEN = Path(__file__).resolve().parent / "golden"
FILES = sorted(p.name for p in GOLDEN.glob("policy_*.json"))


def _load(name: str) -> dict[str, Any]:
    return json.loads((GOLDEN / name).read_text(encoding="utf-8"))


def test_the_golden_files_are_there() -> None:
    assert FILES == ["policy_default.json", "policy_ties.json", "policy_variants.json"]
    assert sum(len(_load(f)["cases"]) for f in FILES) >= 900


@pytest.mark.parametrize("name", FILES)
def test_policy_matches_its_goldens(name: str) -> None:
    golden = _load(name)
    got = run_batch(golden)
    wrong = [
        f"{c['name']}:\n  expected {dumps(c['expected'])}\n  got      {dumps(g)}"
        for c, g in zip(golden["cases"], got, strict=True)
        if dumps(g) != dumps(c["expected"])
    ]
    assert not wrong, f"{len(wrong)} of {len(got)} cases differ, first ones:\n" + "\n".join(wrong[:5])


@pytest.mark.parametrize("name", FILES)
def test_each_case_alone_is_a_batch_of_one(name: str) -> None:
    """A single turbine (a batch of one) gets what it gets inside the batch (hand-written cases)."""
    golden = _load(name)
    for case in golden["cases"]:
        if case["name"].startswith("random"):
            continue
        (got,) = run_batch({**golden, "cases": [case]})
        assert dumps(got) == dumps(case["expected"]), case["name"]


def test_the_generator_still_makes_the_same_inputs() -> None:
    """The goldens' inputs are what the generator draws (it is deterministic), so it can regenerate them."""
    for name, golden in goldens().items():
        on_disk = _load(name)
        assert [c["name"] for c in on_disk["cases"]] == [c["name"] for c in golden["cases"]]
        strip = [{k: v for k, v in c.items() if k != "expected"} for c in on_disk["cases"]]
        assert dumps(strip) == dumps(golden["cases"])
