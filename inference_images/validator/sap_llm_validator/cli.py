"""One CLI for the validator image; every subcommand writes one result JSON (``--result``) and prints it.

    python -m sap_llm_validator verify-weights --artifacts DIR --manifest manifest.json --result r.json
    python -m sap_llm_validator evaluate --artifacts DIR --test test.jsonl [--heldout heldout.jsonl] --result r.json
    python -m sap_llm_validator smoke --artifacts DIR [--documents docs.jsonl] --result r.json
    python -m sap_llm_validator benchmark (--artifacts DIR | --build 7b) --result r.json
    python -m sap_llm_validator train --train train.jsonl --out DIR [--manifest manifest.json] --result r.json
    python -m sap_llm_validator audit-dataset --manifest dataset_manifest.jsonl --result r.json

Exit status: 0 when every check passed, 1 when one failed, 2 on bad arguments or unusable input.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("HF_HUB_DISABLE_PROGRESS_BARS", "1")
os.environ.setdefault("TRANSFORMERS_VERBOSITY", "error")


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="sap_llm_validator", description=__doc__.splitlines()[0])
    commands = parser.add_subparsers(dest="command", required=True)
    verify = commands.add_parser("verify-weights", help="sha256 and parameter counts against the manifest")
    verify.add_argument("--artifacts", type=Path, required=True)
    verify.add_argument("--manifest", type=Path, required=True)
    evaluate = commands.add_parser("evaluate", help="model-validation metrics over a labelled set")
    evaluate.add_argument("--artifacts", type=Path, required=True)
    evaluate.add_argument("--test", type=Path, required=True)
    evaluate.add_argument("--heldout", type=Path)
    evaluate.add_argument("--min-class-accuracy", type=float, default=0.95,
                          help="a document type or PO subtype passes at this accuracy")
    smoke = commands.add_parser("smoke", help="10 documents through the model on its device")
    smoke.add_argument("--artifacts", type=Path, required=True)
    smoke.add_argument("--documents", type=Path, help="labelled documents (default: 10 synthetic ones)")
    smoke.add_argument("--latency-target", type=float, default=1.5)
    smoke.add_argument("--allow-cpu", action="store_true", help="pass without a GPU (CPU-only test runs)")
    bench = commands.add_parser("benchmark", help="docs/hour, latency, memory and GPU utilisation")
    source = bench.add_mutually_exclusive_group(required=True)
    source.add_argument("--artifacts", type=Path)
    source.add_argument("--build", choices=("tiny", "base", "large", "7b"),
                        help="random weights of this size, built from a config (throughput only)")
    bench.add_argument("--documents", type=int, default=256)
    bench.add_argument("--batch-sizes", default="1,8,32")
    bench.add_argument("--target-docs-per-hour", type=float, default=5000)
    train = commands.add_parser("train", help="build the three components from a config and train them")
    train.add_argument("--train", type=Path, required=True)
    train.add_argument("--out", type=Path, required=True)
    train.add_argument("--steps", type=int, default=1500, help="0 leaves the weights random")
    train.add_argument("--max-seconds", type=float, default=600)
    train.add_argument("--seed", type=int, default=0)
    train.add_argument("--workers", type=int, default=1,
                       help="train the three components side by side in this many processes (on a CPU: 3)")
    train.add_argument("--manifest", type=Path, help="write the artifacts' manifest here")
    data = commands.add_parser("audit-dataset", help="split ratios, leakage and provenance from a dataset manifest")
    data.add_argument("--manifest", type=Path, required=True)
    data.add_argument("--expected-split", default="train=0.70,test=0.15,heldout=0.15")
    data.add_argument("--max-deviation", type=float, default=0.01, help="largest tolerated ratio deviation")
    for command in commands.choices.values():
        command.add_argument("--result", type=Path, required=True)
        if command not in (verify, data):
            command.add_argument("--device", default="auto", help="auto, cpu, cuda, cuda:N")
            command.add_argument("--dtype", choices=("auto", "fp32", "fp16", "bf16"), default="auto")
            command.add_argument("--batch-size", type=int, default=32)
    return parser


def _load(args):
    from sap_llm_model.pipeline import DocumentPipeline

    return DocumentPipeline.load(args.artifacts, args.device, args.dtype)


def _run(args) -> dict:
    if args.command == "verify-weights":
        from sap_llm_validator.weights import verify

        return verify(args.artifacts, args.manifest)
    if args.command == "audit-dataset":
        from sap_llm_validator.dataset_audit import audit, parse_split_plan

        return audit(args.manifest, parse_split_plan(args.expected_split), args.max_deviation)
    from sap_llm_validator.datasets import read_dataset

    if args.command == "evaluate":
        from sap_llm_validator.evaluate import evaluate

        test = read_dataset(args.test)
        heldout = read_dataset(args.heldout) if args.heldout else None
        return evaluate(_load(args), test, heldout, args.batch_size, args.min_class_accuracy)
    from sap_llm_contract.documents import synthetic_documents

    if args.command == "smoke":
        from sap_llm_validator.smoke import SMOKE_DOCUMENTS, smoke

        documents = read_dataset(args.documents) if args.documents else list(
            synthetic_documents(SMOKE_DOCUMENTS, seed=0, split="test"))
        return smoke(_load(args), documents, args.latency_target, require_gpu=not args.allow_cpu)
    if args.command == "benchmark":
        return _benchmark(args, [d["content"] for d in synthetic_documents(args.documents, seed=0, split="test")])
    return _train(args, read_dataset(args.train))


def _benchmark(args, texts: list[str]) -> dict:
    from sap_llm_validator.benchmark import benchmark

    sizes = [int(size) for size in args.batch_sizes.split(",")]
    if args.artifacts:
        return benchmark(_load(args), texts, sizes, args.target_docs_per_hour, str(args.artifacts))
    from sap_llm_model.modeling import build_tokenizer, pick_device, pick_dtype
    from sap_llm_model.pipeline import DocumentPipeline

    from sap_llm_validator.train import build_components, vocabulary_texts

    device = pick_device(args.device)
    dtype = pick_dtype(device, args.dtype)
    tokenizer = build_tokenizer(vocabulary_texts([]) + texts)
    components = {name: (model.to(device=device, dtype=dtype).eval(), tokenizer)
                  for name, model in build_components(tokenizer, args.build).items()}
    return benchmark(DocumentPipeline(components, device, dtype), texts, sizes, args.target_docs_per_hour,
                     f"random weights, size {args.build}")


def _train(args, documents: list[dict]) -> dict:
    from sap_llm_model.pipeline import COMPONENTS

    from sap_llm_validator.train import train
    from sap_llm_validator.weights import write_manifest

    result = train(documents, args.out, args.steps, args.max_seconds, args.batch_size, args.seed,
                   workers=args.workers)
    if args.manifest:
        args.manifest.write_text(json.dumps(write_manifest(args.out, list(COMPONENTS)), indent=2))
        result["manifest"] = str(args.manifest)
    # a component cut short by --max-seconds is undertrained: the run fails rather than publish it as trained
    result["passed"] = all(c["steps"] == args.steps for c in result["components"].values())
    return result


def main(argv: list[str] | None = None) -> int:
    parser = _parser()
    args = parser.parse_args(argv)
    from sap_llm_validator.datasets import DatasetError
    from sap_llm_validator.weights import ManifestError

    try:
        result = _run(args)
    except (DatasetError, ManifestError, OSError) as exc:
        print(f"sap_llm_validator {args.command}: {exc}", file=sys.stderr)
        return 2
    args.result.parent.mkdir(parents=True, exist_ok=True)
    args.result.write_text(json.dumps(result, indent=2))
    print(json.dumps(result, indent=2))
    return 0 if result["passed"] else 1
