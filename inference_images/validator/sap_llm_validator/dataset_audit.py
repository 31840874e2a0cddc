"""Audit a dataset manifest (one JSON line per document: ``sha256``, ``split``, provenance fields): how many documents,
how far the split ratios are from the plan, whether any content hash sits in two splits (leakage), and which
documents lack provenance. Every number is computed from the manifest; a manifest that cannot be read is an error."""

from __future__ import annotations

from collections import Counter, defaultdict
from pathlib import Path

from sap_llm_validator.datasets import DatasetError, read_jsonl

PROVENANCE_FIELDS = ("source", "labelled_by", "created_at")


def parse_split_plan(text: str) -> dict[str, float]:
    """``train=0.70,test=0.15,heldout=0.15`` -> ratios that sum to 1."""
    try:
        plan = {name: float(ratio) for name, ratio in (part.split("=", 1) for part in text.split(","))}
    except ValueError:
        raise DatasetError(f"--expected-split: {text!r} is not name=ratio,name=ratio,...") from None
    if abs(sum(plan.values()) - 1) > 1e-6 or any(ratio <= 0 for ratio in plan.values()):
        raise DatasetError(f"--expected-split: ratios must be positive and sum to 1, got {plan}")
    return plan


def read_manifest(path: Path) -> list[dict]:
    def problem(entry: object) -> str | None:
        ok = isinstance(entry, dict) and isinstance(entry.get("sha256"), str) and entry.get("split")
        return None if ok else "needs a sha256 and a split"

    return read_jsonl(path, problem)


def audit(path: Path, plan: dict[str, float], max_deviation: float,
          provenance_fields: tuple[str, ...] = PROVENANCE_FIELDS) -> dict:
    entries = read_manifest(path)
    counts = Counter(entry["split"] for entry in entries)
    total = len(entries)
    ratios = {split: counts.get(split, 0) / total for split in sorted(set(plan) | set(counts))}
    deviation = max(abs(ratios[split] - plan.get(split, 0.0)) for split in ratios)
    splits_of: dict[str, set[str]] = defaultdict(set)
    for entry in entries:
        splits_of[entry["sha256"]].add(entry["split"])
    leaked = sorted(digest for digest, splits in splits_of.items() if len(splits) > 1)
    missing = [entry.get("document_id", entry["sha256"][:12]) for entry in entries
               if any(not entry.get(name) for name in provenance_fields)]
    return {
        "manifest": str(path),
        "documents": total,
        "unique_documents": len(splits_of),
        "split": {"counts": dict(sorted(counts.items())), "ratios": ratios, "plan": plan,
                  "max_deviation": round(deviation, 6), "tolerance": max_deviation},
        "leakage": {"overlapping_hashes": len(leaked), "examples": leaked[:5]},
        "provenance": {"fields": list(provenance_fields), "documents_missing_fields": len(missing),
                       "examples": missing[:5]},
        "passed": deviation <= max_deviation and not leaked and not missing,
    }
