"""The dataset audit computes split ratios, leakage and provenance from the manifest itself; a manifest it cannot
read is an error (no result, so the gates reading the job fail), never a pass."""

from __future__ import annotations

import json

import pytest
from sap_llm_validator.dataset_audit import audit, parse_split_plan
from sap_llm_validator.datasets import DatasetError

from tests.inference_images.validator.test_cli import REHEARSAL, validator

PLAN = {"train": 0.70, "test": 0.15, "heldout": 0.15}


def entry(index: int, split: str, **overrides) -> dict:
    line = {"document_id": f"d{index}", "sha256": f"{index:064x}", "split": split, "source": "synthetic",
            "labelled_by": "generator", "created_at": "2026-11-26T00:00:00+00:00"}
    return {**line, **overrides}


def manifest(tmp_path, entries: list[dict]):
    path = tmp_path / "manifest.jsonl"
    path.write_text("".join(json.dumps(e) + "\n" for e in entries))
    return path


def planned(counts=(70, 15, 15)) -> list[dict]:
    splits = ["train"] * counts[0] + ["test"] * counts[1] + ["heldout"] * counts[2]
    return [entry(index, split) for index, split in enumerate(splits)]


def test_the_rehearsal_manifest_passes_through_the_job_entrypoint(tmp_path):
    code, result, stderr = validator("audit-dataset", "--manifest", str(REHEARSAL / "dataset_manifest.jsonl"),
                                     result=tmp_path / "audit.json")
    assert code == 0, stderr
    assert result["documents"] == result["unique_documents"] == 1000
    assert result["split"]["counts"] == {"heldout": 150, "test": 150, "train": 700}
    assert result["split"]["max_deviation"] == 0.0
    assert (result["leakage"]["overlapping_hashes"], result["provenance"]["documents_missing_fields"]) == (0, 0)


def test_a_document_in_two_splits_is_leakage(tmp_path):
    entries = planned()
    entries[80] = entry(80, "test", sha256=entries[3]["sha256"])  # a training document again in test
    result = audit(manifest(tmp_path, entries), PLAN, 0.01)
    assert result["leakage"] == {"overlapping_hashes": 1, "examples": [entries[3]["sha256"]]}
    assert result["passed"] is False


def test_split_ratios_off_the_plan_fail(tmp_path):
    result = audit(manifest(tmp_path, planned((80, 10, 10))), PLAN, 0.01)
    assert result["split"]["max_deviation"] == pytest.approx(0.10)
    assert result["passed"] is False


def test_documents_without_provenance_are_counted(tmp_path):
    entries = planned()
    entries[5]["source"] = ""
    del entries[6]["created_at"]
    result = audit(manifest(tmp_path, entries), PLAN, 0.01)
    assert result["provenance"]["documents_missing_fields"] == 2 and result["provenance"]["examples"] == ["d5", "d6"]
    assert result["passed"] is False


@pytest.mark.parametrize(("content", "message"), [
    ('{"sha256": "ab", "split": "train"}\nnot json\n', "line 2: not JSON"),
    ('{"split": "train"}\n', "line 1: needs a sha256 and a split"),
    ("\n", "holds no document"),
])
def test_an_unreadable_manifest_is_an_error(tmp_path, content, message):
    path = tmp_path / "manifest.jsonl"
    path.write_text(content)
    with pytest.raises(DatasetError, match=message):
        audit(path, PLAN, 0.01)


def test_a_missing_manifest_leaves_no_result(tmp_path):
    code, result, stderr = validator("audit-dataset", "--manifest", str(tmp_path / "absent.jsonl"),
                                     result=tmp_path / "audit.json")
    assert (code, result) == (2, None) and "cannot read" in stderr


def test_split_plan_must_sum_to_one():
    assert parse_split_plan("train=0.70,test=0.15,heldout=0.15") == PLAN
    with pytest.raises(DatasetError, match="sum to 1"):
        parse_split_plan("train=0.7,test=0.2")
