"""The load-test image's entrypoint, run as the local process it is on the embedded default, against the
reference server on loopback."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import httpx
import pytest
from sap_llm_contract.documents import synthetic_documents

from sap_llm_release.deployers.local_process import LocalProcessDeployer
from tests.support.server import SERVER_SCRIPT

ROOT = Path(__file__).resolve().parents[2]
LOADTEST = ROOT / "inference_images" / "loadtest" / "loadtest.py"
LOADTEST_PYTHON = Path(os.environ.get("SAP_LLM_LOADTEST_PYTHON", ROOT / ".venv-loadtest" / "bin" / "python"))


@pytest.fixture(scope="module")
def documents(tmp_path_factory) -> Path:
    path = tmp_path_factory.mktemp("loadtest") / "documents.jsonl"
    path.write_text("\n".join(json.dumps(d) for d in synthetic_documents(30, seed=11)) + "\n")
    return path


@pytest.fixture
def server(tmp_path):
    """The reference server as a local process (fault knobs on), removed afterwards."""
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    deployer = LocalProcessDeployer(
        state_dir=tmp_path, ports={"blue": port},
        server_command=[sys.executable, str(SERVER_SCRIPT), "--enable-fault-injection"],
    )
    deployer.deploy("blue", "1.0.0")
    ready, seen = deployer.wait_ready("blue", 30)
    assert ready, seen
    yield deployer
    deployer.remove("blue")


def run_loadtest(*args: str, result: Path) -> tuple[int, dict]:
    assert LOADTEST_PYTHON.exists(), f"{LOADTEST_PYTHON} is missing: make setup builds the load-test environment"
    completed = subprocess.run([str(LOADTEST_PYTHON), str(LOADTEST), *args, "--result", str(result)],
                               capture_output=True, text=True, timeout=120)
    assert completed.returncode in (0, 1), completed.stderr
    return completed.returncode, json.loads(result.read_text())


def _faults(server, **faults) -> None:
    httpx.post(server.url("blue") + "/admin/faults", json=faults, timeout=5).raise_for_status()


def test_smoke_passes_on_a_healthy_endpoint(server, documents, tmp_path):
    code, result = run_loadtest("smoke", "--url", server.url("blue"), "--documents", str(documents),
                                "--log-file", str(tmp_path / "blue.log"), result=tmp_path / "smoke.json")
    assert code == 0, result
    assert set(result["checks"]) == {"/health", "/health/ready", "documents", "latency", "metrics", "log"}
    assert result["checks"]["documents"]["detail"].startswith("10/10") and result["documents_ok"] == 10


def test_smoke_fails_on_500s_and_on_error_lines_in_the_log(server, documents, tmp_path):
    _faults(server, error_rate=1.0)
    code, result = run_loadtest("smoke", "--url", server.url("blue"), "--documents", str(documents),
                                "--log-file", str(tmp_path / "blue.log"), result=tmp_path / "smoke.json")
    assert code == 1 and result["passed"] is False
    assert not result["checks"]["documents"]["ok"] and "HTTP 500" in result["checks"]["documents"]["detail"]
    assert result["documents_ok"] == 0
    assert not result["checks"]["log"]["ok"] and "inference failed" in result["checks"]["log"]["detail"]


def test_smoke_fails_when_latency_is_above_target(server, documents, tmp_path):
    _faults(server, added_latency_s=0.3)
    code, result = run_loadtest("smoke", "--url", server.url("blue"), "--documents", str(documents),
                                "--latency-target", "0.2", result=tmp_path / "smoke.json")
    assert code == 1 and not result["checks"]["latency"]["ok"]


def test_load_sustains_the_target_rate_and_reports_percentiles_and_memory(server, documents, tmp_path):
    # warm-up: a fresh service's resident memory grows while its allocator and caches fill, which six seconds of
    # measurement would read as a leak
    run_loadtest("load", "--url", server.url("blue"), "--documents", str(documents), "--docs-per-hour", "36000",
                 "--duration", "4", result=tmp_path / "warm-up.json")
    code, result = run_loadtest("load", "--url", server.url("blue"), "--documents", str(documents),
                                "--docs-per-hour", "36000", "--duration", "6", result=tmp_path / "load.json")
    assert code == 0, result
    assert result["failures"] == 0 and result["error_ratio"] == 0
    assert 0.8 * 36000 <= result["docs_per_hour"] <= 1.2 * 36000
    assert 0 < result["p50_seconds"] <= result["p95_seconds"] <= result["p99_seconds"] < 1.5
    assert result["server_p95_seconds"] is not None and result["memory_samples"] >= 4
    assert 0 < result["peak_memory_gib"] < 2 and result["memory_leak_detected"] == 0


def test_load_fails_on_errors(server, documents, tmp_path):
    _faults(server, error_rate=0.5)
    code, result = run_loadtest("load", "--url", server.url("blue"), "--documents", str(documents),
                                "--docs-per-hour", "36000", "--duration", "3", result=tmp_path / "load.json")
    assert code == 1 and result["passed"] is False
    assert 0.2 < result["error_ratio"] < 0.8
    assert result["docs_per_hour"] < 36000


def test_bad_documents_file_is_refused_naming_the_field(tmp_path):
    bad = tmp_path / "bad.jsonl"
    bad.write_text(json.dumps({"document_id": "x", "content": "PURCHASE ORDER"}) + "\n")
    completed = subprocess.run([str(LOADTEST_PYTHON), str(LOADTEST), "smoke", "--url", "http://127.0.0.1:9",
                                "--documents", str(bad), "--result", str(tmp_path / "r.json")],
                               capture_output=True, text=True, timeout=60)
    assert completed.returncode == 2
    assert "--documents line 1: missing ['document_type']" in completed.stderr


def _module():
    import importlib.util

    spec = importlib.util.spec_from_file_location("loadtest_module", LOADTEST)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_histogram_quantile_matches_prometheus_interpolation():
    loadtest = _module()
    before = {0.1: 10, 0.25: 10, float("inf"): 10}
    after = {0.1: 10, 0.25: 110, float("inf"): 110}  # 100 new observations, all in (0.1, 0.25]
    assert loadtest.histogram_quantile(0.95, before, after) == pytest.approx(0.1 + 0.15 * 0.95)
    assert loadtest.histogram_quantile(0.95, after, after) is None


def test_memory_slope_flags_steady_growth_only():
    loadtest = _module()
    flat = [(t, 100e6) for t in range(10)]
    growing = [(t, 100e6 + t * 1e6) for t in range(10)]  # 1 MB a second
    assert loadtest.memory_slope_per_hour(flat) == 0
    assert loadtest.memory_slope_per_hour(growing) == pytest.approx(3.6e9)
    assert loadtest.memory_slope_per_hour(growing[:1]) is None  # one sample shows no trend, not "no leak"
