"""Each committed benchmark, run as a user runs it, at its smallest size: a benchmark that breaks fails the suite.
The figures they print are not asserted (they vary with the machine); that they print one is."""

from __future__ import annotations

import os
import re
import subprocess
import sys
import tempfile

import pytest

from tests.support.runs import ROOT, write_traffic_spec

VALIDATOR_PYTHON = ROOT / ".venv-validator" / "bin" / "python"


def run(command: list[str], timeout_s: float, **env: str) -> str:
    """The benchmark's output; it must leave nothing of its own in its temporary directory (torch keeps its compile
    cache there, ``torchinductor_<user>``)."""
    clean_env = {key: value for key, value in os.environ.items() if not key.startswith(("AIRFLOW", "SAP_LLM"))}
    with tempfile.TemporaryDirectory(prefix="benchmark-tmp-") as tmp:
        result = subprocess.run(command, cwd=ROOT, env={**clean_env, "TMPDIR": tmp, **env}, capture_output=True,
                                text=True, timeout=timeout_s)
        assert result.returncode == 0, f"{' '.join(command)} exited {result.returncode}:\n{result.stderr[-3000:]}"
        left = [name for name in os.listdir(tmp) if not name.startswith("torchinductor_")]
        assert not left, f"{' '.join(command)} left {left} in its temporary directory"
    return result.stdout


def test_dag_parse_prints_its_median():
    out = run([sys.executable, "benchmarks/dag_parse.py", "--runs", "1"], timeout_s=300)
    assert re.search(r"release_sap_llm\.py: median \d+\.\d{3} s over 1 parses", out), out
    assert "heavy modules imported at parse time: none" in out
    assert re.search(r"sap_llm_release: serialization median \d+\.\d{3} s CPU over 1 runs", out), out


def test_validator_cpu_prints_its_throughput():
    out = run([str(VALIDATOR_PYTHON), "benchmarks/validator_cpu.py", "--runs", "1", "--batch-sizes", "1"],
              timeout_s=300, PYTHONPATH=f"{ROOT / 'inference_images'}:{ROOT / 'inference_images' / 'validator'}")
    assert re.search(r"batch   1: evaluate throughput median [\d,]+ docs/hour", out), out


@pytest.mark.stack
@pytest.mark.timeout(600)
def test_rollback_reaction_measures_one_rollback(unused_stack_ports, tmp_path):
    spec = write_traffic_spec(tmp_path / "traffic.yaml")
    out = run([sys.executable, "benchmarks/rollback_reaction.py", "--runs", "1", "--base-port",
               str(unused_stack_ports), "--spec", str(spec)], timeout_s=540)
    assert re.search(r"rollback reaction at the 20% step under dag.test\(\), 1 runs \(.*\): \d+\.\d / \d+\.\d / "
                     r"\d+\.\d$", out, re.M), out
    assert re.search(r"median: breach decided \d+\.\d s, router written \d+\.\d s, last green answer \d+\.\d s "
                     r"\(goal <= 3 s", out), out


def test_rollback_reaction_keeps_a_busy_scheduler_for_the_real_one():
    """dag.test() has no scheduler to keep busy: refused before anything starts."""
    done = subprocess.run([sys.executable, "benchmarks/rollback_reaction.py", "--busy", "50"], cwd=ROOT,
                          capture_output=True, text=True, timeout=60)
    assert done.returncode == 2 and "--busy: only with --airflow standalone" in done.stderr, done.stderr


def test_audit_month_prints_its_wall_time_and_queries():
    out = run([sys.executable, "benchmarks/audit_month.py", "--runs", "1", "--days", "2", "--step-s", "60"],
              timeout_s=300)
    assert re.search(r"monthly audit over 2 days at 60 s, 1 runs: wall median \d+\.\d s \(goal < 60 s\); "
                     r"Prometheus queries per run: median [1-9]\d*, total time median \d+\.\d\d s", out), out


def test_dr_drill_prints_rto_and_rpo():
    out = run([sys.executable, "benchmarks/dr_drill.py", "--releases", "20", "--runs", "1"], timeout_s=300)
    assert re.search(r"ledger: 20 releases x 122 gates written in \d+\.\d s", out), out
    assert re.search(r"RTO: \d+\.\d\d s \(\d\.\d{3} min\) median of 1 drills \(target < 60 min\)", out), out
    assert re.search(r"RPO: \d+\.\d\d s \(\d\.\d{3} min\) median of 1 drills \(target < 5 min\)", out), out


@pytest.mark.timeout(300)
def test_trigger_scale_prints_the_lag_of_each_k(unused_stack_ports):
    out = run([sys.executable, "benchmarks/trigger_scale.py", "--triggers", "5", "--window-s", "4", "--warm-up-s",
               "4", "--base-port", str(unused_stack_ports)], timeout_s=240)
    assert re.search(r"K=   5: lag p50 \d+\.\d{3} s, p95 \d+\.\d{3} s, max \d+\.\d{3} s over \d+ checks; windows "
                     r"\{'passed': 5\}; CPU triggerer \d+% of a core, Prometheus \d+%", out), out


def test_stack_idle_cpu_prints_each_process_and_the_total(unused_stack_ports):
    out = run([sys.executable, "benchmarks/stack_idle_cpu.py", "--seconds", "2", "--runs", "1", "--base-port",
               str(unused_stack_ports)], timeout_s=240)
    for name in ("blue (SAP_LLM server)", "traffic", "prometheus", "prometheus-2", "prometheus-3", "nginx"):
        assert re.search(rf"^  {re.escape(name)} +median +\d+\.\d% of a core$", out, re.M), out
    assert re.search(r"^stack total: median \d+\.\d% of a core \(min", out, re.M), out
