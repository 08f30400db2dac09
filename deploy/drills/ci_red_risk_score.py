"""Drill for docs/runbooks/ci-red-risk-score.md: CI is red because a risk-score test fails after a change.

    .venv/bin/python deploy/drills/ci_red_risk_score.py

In a throw-away clone of this repository (never the working tree): commit a risk-policy change that
breaks a risk-score unit test (the critical threshold raised from 80 to 85), run the risk-score test
target as CI does (JUnit report), show the failing test, its assertion and the commit that caused it,
revert the commit, run the target again: green. Exit 0 when every step held, 1 otherwise.
"""

from __future__ import annotations

import re
import shutil
import sys
import tempfile
import xml.etree.ElementTree as ET
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from drill_lib import PY, ROOT, Drill, base_env, expect, run

POLICY = "models/config/policy.yaml"
TARGET = ["tests/unit/models/test_models_policy.py", "tests/unit/models/test_models_policy_batch.py"]
GIT = ["git", "-c", "user.name=drill", "-c", "user.email=drill@localhost"]


def run_target(repo: Path, junit: Path) -> tuple[int, str]:
    """The risk-score tests of the clone (its own code first on the path), with a JUnit report as in CI."""
    env = {**base_env(), "PYTHONPATH": str(repo)}
    cmd = [PY, "-m", "pytest", *TARGET, "-q", "-p", "no:cacheprovider", f"--junitxml={junit}"]
    res = run(cmd, env, timeout=600, cwd=repo)
    return res.returncode, res.stdout + res.stderr


def failed_cases(junit: Path) -> list[tuple[str, str]]:
    """(test id, first line of the failure message) of every failed test in a JUnit report."""
    out = []
    for case in ET.parse(junit).getroot().iter("testcase"):
        failure = case.find("failure")
        if failure is not None:
            message = (failure.get("message") or "").splitlines()[0][:200]
            out.append((f"{case.get('classname')}::{case.get('name')}", message))
    return out


def main(argv: list[str] | None = None) -> int:
    drill = Drill("ci-red-risk-score")
    work = Path(tempfile.mkdtemp(prefix="cockpit-drill-ci-red-"))
    repo = work / "repo"
    error: BaseException | None = None
    try:
        with drill.step("throw-away clone of HEAD (the working tree is never touched)"):
            res = run(["git", "clone", "-q", "--shared", str(ROOT), str(repo)], base_env())
            expect(res.returncode == 0, f"git clone failed: {res.stderr}")
            drill.show(
                "clone",
                f"{repo} at {run(['git', 'rev-parse', '--short', 'HEAD'], base_env(), cwd=repo).stdout}",
                1,
            )
        with drill.step("the change: a risk-policy commit raises the critical threshold 80 -> 85"):
            path = repo / POLICY
            text = path.read_text()
            changed = re.sub(r"(?m)^(\s*critical:\s*)80(\.0)?\b", r"\g<1>85.0", text, count=1)
            expect(changed != text, f"{POLICY}: no 'critical: 80' line to change")
            path.write_text(changed)
            run([*GIT, "commit", "-q", "-am", "policy: critical tier at 85 (was 80)"], base_env(), cwd=repo)
            diff = run(["git", "show", "--stat", "-p", "HEAD", "--", POLICY], base_env(), cwd=repo).stdout
            drill.show("$ git show HEAD", diff, 14)
        with drill.step("symptom: the risk-score test target fails, as the CI unit job would"):
            junit = work / "junit-red.xml"
            code, out = run_target(repo, junit)
            drill.show(
                f"$ pytest {' '.join(TARGET)}   (exit {code})",
                "\n".join(
                    line
                    for line in out.splitlines()
                    if line.startswith(("FAILED", "ERROR")) or " passed" in line or " failed" in line
                ),
                10,
            )
            expect(code == 1, f"the target should fail (exit 1), got {code}")
            drill.facts["red_exit"] = code
        with drill.step("diagnosis: which tests, which assertion (JUnit report), which commit"):
            cases = failed_cases(junit)
            drill.show(
                "failed tests (junit report, as on the CI pipeline's Tests tab)",
                "\n".join(f"{name}: {message}" for name, message in cases),
            )
            expect(
                any("test_tier_boundaries" in name for name, _ in cases), "test_tier_boundaries should fail"
            )
            log = run(["git", "log", "--oneline", "-3", "--", POLICY], base_env(), cwd=repo).stdout
            drill.show(f"$ git log --oneline -3 -- {POLICY}", log, 3)
            drill.facts["failed_tests"] = [name for name, _ in cases]
        with drill.step("remediation: revert the commit (or fix the test with the policy's owner)"):
            res = run([*GIT, "revert", "--no-edit", "HEAD"], base_env(), cwd=repo)
            expect(res.returncode == 0, f"git revert failed: {res.stderr}")
            drill.show("$ git revert --no-edit HEAD", res.stdout, 3)
        with drill.step("verification: the same target is green"):
            code, out = run_target(repo, work / "junit-green.xml")
            drill.show(f"$ pytest {' '.join(TARGET)}   (exit {code})", out, 2)
            expect(code == 0, f"the target should pass after the revert, got exit {code}")
    except Exception as exc:
        error = exc
    finally:
        shutil.rmtree(work, ignore_errors=True)
    return drill.finish(error)


if __name__ == "__main__":
    sys.exit(main())
