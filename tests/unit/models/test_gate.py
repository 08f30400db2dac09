"""Promotion gate: pass, refused for each figure (tolerance and limit), missing figures, backtest, force."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

from models import registry as R
from models.cli import app
from models.gate import (
    DEFAULT_GATE_PATH,
    GateConfigError,
    VersionFigures,
    check_reason,
    decide,
    gate_version,
    load_config,
    reference_figures,
)

pytestmark = pytest.mark.unit

PROD = {"pr_auc": 0.85, "recall_at_precision_0.9": 0.59, "brier": 0.018, "ttf_mae_le14_days": 6.6}
SOURCE = {"source": "simulator preset=training turbines=20 days=365.0 seed=1007"}


def metrics(**model: float | None) -> dict[str, Any]:
    return {"holdout": SOURCE, "model": {**PROD, **model}}


def figs(name: str, backtest: Any = None, **model: float | None) -> VersionFigures:
    return VersionFigures(name=name, metrics=metrics(**model), backtest=backtest)


@pytest.fixture(scope="module")
def config():  # type: ignore[no-untyped-def]
    return load_config()


def test_packaged_config_loads_with_floors_and_tolerances(config) -> None:  # type: ignore[no-untyped-def]
    assert DEFAULT_GATE_PATH.is_file()
    assert {"pr_auc", "brier", "ttf_mae_le14_days"} <= set(config.figures)
    assert config.figures["pr_auc"].floor is not None
    assert config.figures["brier"].ceiling is not None
    assert config.ci.train and set(config.ci.reference) <= set(config.figures)


def test_same_figures_pass(config) -> None:  # type: ignore[no-untyped-def]
    d = decide(config, figs("cand"), figs("prod"))
    assert d.passed and d.failed == ()
    assert d.production == "prod" and "may replace prod" in d.summary()
    assert {c.status for c in d.checks} == {"pass", "n/a"}  # backtest figures: no backtest.json


def test_better_candidate_passes(config) -> None:  # type: ignore[no-untyped-def]
    d = decide(config, figs("cand", pr_auc=0.9, brier=0.01, ttf_mae_le14_days=5.0), figs("prod"))
    assert d.passed


@pytest.mark.parametrize(
    ("figure", "worse"),
    [
        ("pr_auc", 0.85 - 0.031),
        ("recall_at_precision_0.9", 0.59 - 0.11),
        ("brier", 0.018 + 0.0051),
        ("ttf_mae_le14_days", 6.6 + 1.01),
    ],
)
def test_each_figure_refused_beyond_tolerance(config, figure: str, worse: float) -> None:  # type: ignore[no-untyped-def]
    d = decide(config, figs("cand", **{figure: worse}), figs("prod"))
    assert not d.passed
    [failed] = d.failed
    rule = config.figures[figure]
    assert failed.figure == figure
    assert failed.candidate == pytest.approx(worse) and failed.production == pytest.approx(PROD[figure])
    assert failed.tolerance == rule.tolerance
    assert rule.label in failed.reason and "tolerance" in failed.reason and "production" in failed.reason
    assert rule.label in d.summary()


@pytest.mark.parametrize(
    ("figure", "delta"),
    [("pr_auc", -0.029), ("brier", 0.0049), ("ttf_mae_le14_days", 0.99), ("recall_at_precision_0.9", -0.09)],
)
def test_worse_within_tolerance_passes(config, figure: str, delta: float) -> None:  # type: ignore[no-untyped-def]
    assert decide(config, figs("cand", **{figure: PROD[figure] + delta}), figs("prod")).passed


@pytest.mark.parametrize(
    ("figure", "value", "kind"),
    [("pr_auc", 0.59, "floor"), ("brier", 0.041, "ceiling"), ("ttf_mae_le14_days", 10.5, "ceiling")],
)
def test_limits_refuse_even_without_production(config, figure: str, value: float, kind: str) -> None:  # type: ignore[no-untyped-def]
    d = decide(config, figs("cand", **{figure: value}), None)
    assert not d.passed and d.production is None
    [failed] = d.failed
    assert failed.figure == figure and kind in failed.reason and failed.limit == config.figures[figure].limit
    assert any("only the floors and ceilings" in w for w in d.warnings)


def test_limit_refuses_even_when_production_is_as_bad(config) -> None:  # type: ignore[no-untyped-def]
    d = decide(config, figs("cand", pr_auc=0.5), figs("prod", pr_auc=0.5))
    assert [c.figure for c in d.failed] == ["pr_auc"] and "floor" in d.failed[0].reason


def test_every_failed_figure_is_named(config) -> None:  # type: ignore[no-untyped-def]
    d = decide(config, figs("cand", pr_auc=0.7, brier=0.03, ttf_mae_le14_days=9.0), figs("prod"))
    assert {c.figure for c in d.failed} == {"pr_auc", "brier", "ttf_mae_le14_days"}


@pytest.mark.parametrize("value", [None, float("nan"), "0.9", True])
def test_missing_or_invalid_candidate_figure_fails(config, value: Any) -> None:  # type: ignore[no-untyped-def]
    cand = VersionFigures("cand", {"model": {**PROD, "pr_auc": value}})
    d = decide(config, cand, figs("prod"))
    assert [c.figure for c in d.failed] == ["pr_auc"] and "missing" in d.failed[0].reason


def test_backtest_judged_when_present(config) -> None:  # type: ignore[no-untyped-def]
    def bt(high: float | None, critical: float | None, false_critical: float | None) -> dict[str, Any]:
        tiers = {
            "high": {"median_lead_days": high},
            "critical": {"median_lead_days": critical, "false_episodes_per_turbine_year": false_critical},
        }
        return {"sources": {"model": {"tiers": tiers}}}  # the layout of `python -m models backtest`

    good = bt(9.0, 4.0, 0.4)
    assert decide(config, figs("cand", backtest=good), figs("prod", backtest=good)).passed
    d = decide(config, figs("cand", backtest=bt(7.5, 2.5, 1.5)), figs("prod", backtest=good))
    assert {c.figure for c in d.failed} == {
        "backtest_median_lead_high_days",  # 1.5 days shorter, tolerance 1
        "backtest_median_lead_critical_days",  # 1.5 days shorter, tolerance 1
        "backtest_false_critical_per_turbine_year",  # above the ceiling of 1
    }
    # production without a backtest: only the limits apply to the backtest figures
    d = decide(config, figs("cand", backtest=bt(4.0, 1.0, 0.5)), figs("prod"))
    assert [c.figure for c in d.failed] == ["backtest_median_lead_high_days"]  # floor 5 d
    # a figure the backtest could not measure (no failure detected) is not judged
    d = decide(config, figs("cand", backtest=bt(None, None, 0.0)), figs("prod", backtest=good))
    statuses = [c.status for c in d.checks if c.figure.startswith("backtest_")]
    assert d.passed and statuses == ["n/a", "n/a", "pass"]


def test_different_holdouts_are_noted(config) -> None:  # type: ignore[no-untyped-def]
    other = VersionFigures("cand", {"holdout": {"source": "other"}, "model": PROD})
    d = decide(config, other, figs("prod"))
    assert d.passed and any("hold-outs differ" in w for w in d.warnings)
    same = {"source": SOURCE["source"].replace("days=365.0", "days=365")}  # int vs float in the text
    d = decide(config, VersionFigures("cand", {"holdout": same, "model": PROD}), figs("prod"))
    assert d.warnings == ()


def test_reference_figures_stand_in_for_production(config) -> None:  # type: ignore[no-untyped-def]
    ref = reference_figures(config)
    cand = VersionFigures("cand", {"model": dict(config.ci.reference)})
    assert decide(config, cand, ref).passed
    worse = VersionFigures(
        "cand", {"model": {**config.ci.reference, "pr_auc": config.ci.reference["pr_auc"] - 0.1}}
    )
    assert [c.figure for c in decide(config, worse, ref).failed] == ["pr_auc"]


@pytest.mark.parametrize(
    ("text", "match"),
    [
        ("figures: {x: {label: X, path: a, better: higher, tolerance: 0, oops: 1}}", "oops: unknown key"),
        ("figures: {x: {label: X, path: a, better: higher, ceiling: 1, tolerance: 0}}", "takes a floor"),
        ("figures: {x: {label: X, path: a, better: lower, floor: 1, tolerance: 0}}", "takes a ceiling"),
        ("figures: {x: {label: X, path: a, better: lower, tolerance: -1}}", "tolerance"),
        ("figures: {}\nci: {reference: {nope: 1}}", "nope"),
        ("- a\n- b", "top level must be a mapping"),
        ("figures: [", "invalid YAML"),
        ("\x00\x01", "invalid"),
    ],
)
def test_bad_config_is_refused_naming_the_file(tmp_path: Path, text: str, match: str) -> None:
    p = tmp_path / "gate.yaml"
    p.write_text(text, encoding="utf-8")
    with pytest.raises(GateConfigError, match=match) as info:
        load_config(p)
    assert str(p) in str(info.value)


def test_missing_config_named(tmp_path: Path) -> None:
    with pytest.raises(GateConfigError, match="gate file not found"):
        load_config(tmp_path / "absent.yaml")


@pytest.mark.parametrize("reason", [None, "", "   ", "a\nb", "x" * 501, "bell\x07"])
def test_force_reason_is_required_and_clean(reason: str | None) -> None:
    with pytest.raises(ValueError, match="reason"):
        check_reason(reason)
    assert check_reason("  retrained on the new failure log  ") == "retrained on the new failure log"


# ---------------------------------------------------------------------------------------------------
# Registry and CLI
# ---------------------------------------------------------------------------------------------------


def _version(reg: Path, name: str, **model: float | None) -> None:
    """A loadable version whose metadata carries hold-out metrics (artifacts are plain objects)."""
    R.save_version(reg, {a: {"stub": a} for a in R.ARTIFACTS}, {"metrics": metrics(**model)}, version=name)


@pytest.fixture
def reg(tmp_path: Path) -> Path:
    reg = tmp_path / "registry"
    _version(reg, "v1")
    R.promote(reg, "v1")
    _version(reg, "v2-good", pr_auc=0.86)
    _version(reg, "v3-worse", pr_auc=0.70, brier=0.03)
    return reg


def test_gate_version_reads_the_registry(reg: Path, config) -> None:  # type: ignore[no-untyped-def]
    assert gate_version(reg, "v2-good", config).passed
    itself = gate_version(reg, "v1", config)
    assert itself.passed and itself.production is None and "is the production version" in itself.warnings[0]
    d = gate_version(reg, "v3-worse", config)
    assert d.production == "v1" and {c.figure for c in d.failed} == {"pr_auc", "brier"}
    (reg / "v2-good" / "backtest.json").write_text("{not json", encoding="utf-8")
    with pytest.raises(ValueError, match=r"backtest\.json: backtest is not valid JSON"):
        gate_version(reg, "v2-good", config)


def run(*args: str) -> Any:
    return CliRunner().invoke(app, list(args), env={"COLUMNS": "160"})


def test_cli_gate_exit_codes(reg: Path) -> None:
    ok = run("gate", "v2-good", "-r", str(reg), "--json")
    assert ok.exit_code == 0, ok.output
    refused = run("gate", "v3-worse", "-r", str(reg))
    assert refused.exit_code == 1
    assert "PR-AUC" in refused.output and "FAIL" in refused.output and "tolerance" in refused.output
    assert R.production_version(reg) == "v1"  # gate never promotes
    missing = run("gate", "v9", "-r", str(reg))
    assert missing.exit_code == 2 and "v9: version directory does not exist" in missing.output


def test_cli_promote_refused_then_forced_with_reason(reg: Path) -> None:
    refused = run("promote", "v3-worse", "-r", str(reg))
    assert refused.exit_code == 1, refused.output
    assert "Brier score" in refused.output and "not promoted" in refused.output
    assert R.production_version(reg) == "v1"

    no_reason = run("promote", "v3-worse", "-r", str(reg), "--force")
    assert no_reason.exit_code == 2 and "--reason" in no_reason.output
    assert R.production_version(reg) == "v1"

    forced = run("promote", "v3-worse", "-r", str(reg), "--force", "--reason", "hot fix for a sensor recall")
    assert forced.exit_code == 0, forced.output
    assert R.production_version(reg) == "v3-worse"
    history = R.read_history(reg)
    gates = [h for h in history if h["action"] == "gate"]
    assert [g["decision"] for g in gates] == ["refused", "forced"]
    assert gates[-1]["reason"] == "hot fix for a sensor recall"
    assert set(gates[-1]["failed"]) == {"pr_auc", "brier"}
    assert history[-1]["action"] == "promote" and history[-1]["version"] == "v3-worse"
    # the gate entries do not disturb rollback
    assert R.rollback(reg) == "v1"


def test_cli_promote_passing_candidate(reg: Path) -> None:
    out = run("promote", "v2-good", "-r", str(reg))
    assert out.exit_code == 0, out.output
    assert R.production_version(reg) == "v2-good"
    assert [h["decision"] for h in R.read_history(reg) if h["action"] == "gate"] == ["passed"]
    assert "reason" not in json.dumps([h for h in R.read_history(reg) if h["action"] == "gate"])


def test_figure_neither_version_has_is_not_judged(config) -> None:  # type: ignore[no-untyped-def]
    bare = VersionFigures("prod", {})
    d = decide(config, VersionFigures("cand", {}), bare)
    assert d.passed and {c.status for c in d.checks} == {"n/a"}
    # production has it, the candidate lost it: refused
    assert not decide(config, VersionFigures("cand", {}), figs("prod")).passed


def test_first_promotion_is_recorded_not_enforced(tmp_path: Path) -> None:
    """No production version to protect (as `train --promote first`): the verdict is kept, not enforced."""
    reg = tmp_path / "registry"
    _version(reg, "v1-weak", pr_auc=0.30)
    assert run("gate", "v1-weak", "-r", str(reg)).exit_code == 1  # the verdict itself is strict
    out = run("promote", "v1-weak", "-r", str(reg))
    assert out.exit_code == 0, out.output
    assert "no other production version" in out.output and "floor" in out.output
    assert R.production_version(reg) == "v1-weak"
    [gate] = [h for h in R.read_history(reg) if h["action"] == "gate"]
    assert gate["decision"] == "first" and gate["failed"] == ["pr_auc"]
    # from now on it is enforced: a weaker one is refused against it
    _version(reg, "v2-weaker", pr_auc=0.20)
    assert run("promote", "v2-weaker", "-r", str(reg)).exit_code == 1


def test_unreadable_production_does_not_block_its_replacement(reg: Path) -> None:
    import shutil

    shutil.rmtree(reg / "v1")  # the pointer names a version that is gone
    out = run("promote", "v2-good", "-r", str(reg))
    assert out.exit_code == 0, out.output
    assert "v1 unreadable" in out.output and R.production_version(reg) == "v2-good"
