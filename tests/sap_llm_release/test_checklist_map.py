"""The README's map from checklist item to gate, check, DAG task and ledger table, generated from the spec."""

from __future__ import annotations

import pytest

from sap_llm_release.checklist_map import BEGIN, END, checklist_rows, main, render_map, with_map
from sap_llm_release.spec import Phase, load_spec
from tests.support.runs import ROOT, SPEC_FILE

SPEC = load_spec(SPEC_FILE)


def test_the_readme_map_is_current():
    assert main(["--check", str(ROOT / "README.md")]) == 0


def test_a_stale_map_is_caught(tmp_path):
    readme = tmp_path / "README.md"
    readme.write_text(with_map(f"# x\n\n{BEGIN}\n{END}\n", SPEC).replace("`p95_latency`", "`p99_latency`", 1))
    assert main(["--check", str(readme)]) == 1
    assert main(["--write", str(readme)]) == 0 and main(["--check", str(readme)]) == 0


def test_a_readme_without_markers_is_refused(tmp_path):
    with pytest.raises(ValueError, match="no checklist map markers"):
        with_map("# no map here\n", SPEC)


def test_every_gate_slo_step_approval_and_job_has_a_row():
    rows = checklist_rows(SPEC)
    names = {row.name for row in rows}
    assert {gate.name for gate in SPEC.gates} <= names
    assert {job.name for job in SPEC.jobs} | {approval.name for approval in SPEC.approvals} <= names
    watches = {(row.name, row.task_id) for row in rows if row.ledger_table == "slo_windows"}
    per_step = 1 + len(SPEC.analysis.health) + len(SPEC.analysis.slos)  # the readiness probe, health, SLOs
    assert len(watches) == len(SPEC.traffic.steps) * per_step + 2  # and the bake's and blue's recovery's rows
    assert ("bake", "post_deployment.bake_green") in watches
    assert [row.phase for row in rows] == sorted((row.phase for row in rows), key=list(Phase).index)


def test_p95_during_the_20_percent_step_takes_one_look():
    (row,) = [row for row in checklist_rows(SPEC) if row.name == "p95_latency" and "20 %" in row.item]
    assert (row.task_id, row.ledger_table) == ("traffic_shift.shift_to_020", "slo_windows")
    assert "| `p95_latency` | SLO window" in render_map(SPEC)
