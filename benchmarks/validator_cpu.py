"""Evaluate throughput of the validator on the CPU, for the tiny rehearsal model (make setup trains it).

    PYTHONPATH=inference_images:inference_images/validator .venv-validator/bin/python benchmarks/validator_cpu.py

Runs the whole ``evaluate`` (pipeline over the test set, self-correction, reasoning) ``--runs`` times per batch
size and prints the median documents per hour of the pipeline pass; the figure quoted is the median of one run.
"""

from __future__ import annotations

import argparse
import os
import statistics
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_VERBOSITY", "error")
os.environ.setdefault("HF_HUB_DISABLE_PROGRESS_BARS", "1")

REHEARSAL = Path(__file__).resolve().parent.parent / ".models" / "rehearsal"


def main() -> None:
    import torch
    from sap_llm_model.pipeline import DocumentPipeline
    from sap_llm_validator.datasets import read_dataset
    from sap_llm_validator.evaluate import evaluate

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", type=Path, default=REHEARSAL)
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--batch-sizes", default="1,8,32")
    args = parser.parse_args()
    pipeline = DocumentPipeline.load(args.model / "model", "cpu")
    documents = read_dataset(args.model / "test.jsonl")
    print(f"tiny model {pipeline.parameters}, {len(documents)} documents, CPU threads {torch.get_num_threads()}")
    for batch_size in (int(size) for size in args.batch_sizes.split(",")):
        rates = [evaluate(pipeline, documents, None, batch_size)["docs_per_hour"] for _ in range(args.runs)]
        print(f"batch {batch_size:>3}: evaluate throughput median {statistics.median(rates):,.0f} docs/hour "
              f"(runs: {', '.join(f'{rate:,.0f}' for rate in rates)})")


if __name__ == "__main__":
    main()
