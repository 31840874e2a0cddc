"""The validator image's entrypoint, run as the local process it is on the embedded default, in its own
environment (torch CPU build + transformers): the rehearsal model passes for a real reason, an untrained one
fails for one, and every failure path names what failed."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[3]
VALIDATOR_PYTHON = Path(os.environ.get("SAP_LLM_VALIDATOR_PYTHON", ROOT / ".venv-validator" / "bin" / "python"))
REHEARSAL = ROOT / ".models" / "rehearsal"
ENV = {**os.environ, "PYTHONPATH": f"{ROOT / 'inference_images'}:{ROOT / 'inference_images' / 'validator'}"}


def validator(*args: str, result: Path, threads: str | None = None) -> tuple[int, dict | None, str]:
    """The validator's entrypoint with ``args``; ``threads`` sets torch's intra-op threads (OMP_NUM_THREADS)."""
    assert VALIDATOR_PYTHON.exists(), f"{VALIDATOR_PYTHON} is missing: make setup builds the validator environment"
    env = {**ENV, "OMP_NUM_THREADS": threads} if threads else ENV
    completed = subprocess.run([str(VALIDATOR_PYTHON), "-m", "sap_llm_validator", *args, "--result", str(result)],
                               capture_output=True, text=True, timeout=300, env=env, cwd=ROOT)
    parsed = json.loads(result.read_text()) if result.exists() else None
    return completed.returncode, parsed, completed.stderr


@pytest.fixture(scope="module")
def rehearsal_model() -> Path:
    assert (REHEARSAL / "manifest.json").exists(), "make setup trains the rehearsal model into .models/rehearsal"
    return REHEARSAL


@pytest.fixture(scope="module")
def untrained_model(tmp_path_factory, rehearsal_model) -> Path:
    out = tmp_path_factory.mktemp("untrained") / "model"
    code, result, stderr = validator("train", "--train", str(rehearsal_model / "train.jsonl"), "--out", str(out),
                                     "--steps", "0", result=out.parent / "train.json")
    assert code == 0, stderr
    assert all(c["steps"] == 0 for c in result["components"].values())
    return out


def test_training_side_by_side_gives_the_weights_of_one_after_another(rehearsal_model, tmp_path):
    digests = []
    for workers in ("1", "3"):
        out = tmp_path / f"workers-{workers}"
        code, result, stderr = validator("train", "--train", str(rehearsal_model / "train.jsonl"), "--out",
                                         str(out / "model"), "--manifest", str(out / "manifest.json"), "--steps", "5",
                                         "--workers", workers, result=out / "train.json", threads="1")
        assert code == 0 and result["passed"], stderr
        assert {c["steps"] for c in result["components"].values()} == {5}
        manifest = json.loads((out / "manifest.json").read_text())["components"]
        digests.append({name: c["files"]["model.safetensors"]["sha256"] for name, c in manifest.items()})
    assert digests[0] == digests[1] and len(set(digests[0].values())) == 3


def test_evaluate_passes_the_trained_rehearsal_model(rehearsal_model):
    """The evaluation `make setup` ran with this entrypoint over the rehearsal model's test and held-out sets (kept
    beside the model as the monthly confidence drift's reference; a failing one fails the set-up)."""
    result = json.loads((rehearsal_model / "evaluation.json").read_text())
    assert result["passed"] is True and result["failures"] == []
    vision, decoder, reasoning = result["vision_encoder"], result["language_decoder"], result["reasoning_engine"]
    assert vision["classification_accuracy"] >= 0.95 and vision["field_extraction_f1"] >= 0.94
    assert (vision["document_types_passed"], vision["po_subtypes_passed"]) == (15, 35)
    assert all(c["documents"] >= 1 for c in vision["per_po_subtype"].values())
    assert decoder["json_schema_compliance"] >= 0.99 and decoder["self_correction_rate"] >= 0.70
    assert decoder["heldout_extraction_f1"] >= 0.92 and decoder["self_correction_attempts"] == 150
    assert reasoning["api_selection_accuracy"] == 1.0
    assert result["device"] == "cpu" and result["docs_per_hour"] > 0 and result["peak_memory_gib"] > 0
    assert result["vision_encoder"]["training_documents"] == 700
    histogram = vision["confidence_histogram"]
    assert list(histogram) == ["0.5", "0.7", "0.8", "0.9", "0.95", "0.98", "0.99", "0.995", "0.999", "1.0", "+Inf"]
    assert sum(histogram.values()) == 150 and histogram["+Inf"] == 0


def test_evaluate_fails_an_untrained_model(untrained_model, rehearsal_model, tmp_path):
    code, result, _ = validator("evaluate", "--artifacts", str(untrained_model),
                                "--test", str(rehearsal_model / "test.jsonl"), result=tmp_path / "e.json")
    assert code == 1 and result["passed"] is False
    assert result["vision_encoder"]["classification_accuracy"] <= 0.5  # no better than "always a PO"
    assert result["language_decoder"]["json_schema_compliance"] < 0.5
    assert result["language_decoder"]["schema_violations"]
    failed = {failure.split(" = ")[0] for failure in result["failures"]}
    assert {"vision_encoder.classification_accuracy", "language_decoder.json_schema_compliance",
            "language_decoder.heldout_extraction_f1"} <= failed  # no held-out set given: no number, no pass


def test_evaluate_fails_when_a_document_type_is_missing(rehearsal_model, tmp_path):
    test_set = tmp_path / "without_quotations.jsonl"
    test_set.write_text("".join(line + "\n" for line in (rehearsal_model / "test.jsonl").read_text().splitlines()
                                if json.loads(line)["document_type"] != "quotation"))
    code, result, _ = validator("evaluate", "--artifacts", str(rehearsal_model / "model"), "--test", str(test_set),
                                "--heldout", str(rehearsal_model / "heldout.jsonl"), result=tmp_path / "e.json")
    assert code == 1
    assert result["vision_encoder"]["document_types_passed"] == 14
    assert result["vision_encoder"]["document_types_missing"] == ["quotation"]


def test_smoke_on_the_cpu_and_its_failure_paths(rehearsal_model, tmp_path):
    model = str(rehearsal_model / "model")
    code, result, stderr = validator("smoke", "--artifacts", model, "--allow-cpu", result=tmp_path / "s.json")
    assert code == 0, stderr
    assert result["documents_ok"] == 10 and all(check["ok"] for check in result["checks"].values())
    code, result, _ = validator("smoke", "--artifacts", model, result=tmp_path / "gpu.json")
    assert code == 1 and not result["checks"]["device"]["ok"]  # a smoke test of a GPU image wants a GPU
    code, result, _ = validator("smoke", "--artifacts", model, "--allow-cpu", "--latency-target", "0.00001",
                                result=tmp_path / "slow.json")
    assert code == 1 and not result["checks"]["latency"]["ok"] and result["checks"]["documents"]["ok"]


def test_benchmark_reports_each_batch_size(tmp_path):
    code, result, stderr = validator("benchmark", "--build", "tiny", "--documents", "64", "--batch-sizes", "1,16",
                                     "--target-docs-per-hour", "5000", result=tmp_path / "b.json")
    assert code == 0, stderr
    assert [run["batch_size"] for run in result["runs"]] == [1, 16]
    for run in result["runs"]:
        assert run["docs_per_hour"] > 0 and run["batch_latency_p95_seconds"] >= run["batch_latency_p50_seconds"]
        assert run["gpu_utilisation"] is None  # no GPU here: not measured, never made up
    assert result["best_docs_per_hour"] == max(run["docs_per_hour"] for run in result["runs"])


def test_verify_weights_cli_passes_then_names_an_altered_file(rehearsal_model, tmp_path):
    copy = tmp_path / "model"
    shutil.copytree(rehearsal_model / "model", copy)
    manifest = str(rehearsal_model / "manifest.json")
    code, result, stderr = validator("verify-weights", "--artifacts", str(copy), "--manifest", manifest,
                                     result=tmp_path / "ok.json")
    assert code == 0, stderr
    assert result["mismatched_files"] == 0 and result["reasoning_engine"]["parameters"] > 0
    weights = copy / "language_decoder" / "model.safetensors"
    data = bytearray(weights.read_bytes())
    data[-1] ^= 0xFF
    weights.write_bytes(bytes(data))
    code, result, _ = validator("verify-weights", "--artifacts", str(copy), "--manifest", manifest,
                                result=tmp_path / "bad.json")
    assert code == 1 and result["mismatches"] == ["language_decoder/model.safetensors"]


def test_unusable_input_exits_2_naming_the_line(tmp_path):
    bad = tmp_path / "bad.jsonl"
    bad.write_text('{"document_id": "a"}\n')
    code, result, stderr = validator("evaluate", "--artifacts", str(tmp_path), "--test", str(bad),
                                     result=tmp_path / "r.json")
    assert code == 2 and result is None
    assert "bad.jsonl line 1: missing" in stderr
