#!/usr/bin/env bash
# The validator image's GPU figures on a CUDA machine, in one run: model evaluation (the checklist's model-validation
# metrics) and the smoke test of the trained rehearsal model on the GPU, then documents per hour, batch latency, peak
# memory and GPU utilisation at the tiny (trained) size and at larger sizes with random weights (the speed of the
# architecture, not its accuracy).
#
#   benchmarks/validator_gpu.sh MODEL_DIR RESULTS_DIR ["base large"]
#
# On one H200 the default run took about 8 minutes; "7b" builds three 7B-parameter components on the CPU first and
# did not finish within that.
# MODEL_DIR holds what `make setup` trains: model/, test.jsonl, heldout.jsonl. Needs python3 with torch (CUDA) and
# the validator's requirements (inference_images/validator/requirements.txt; the image has them).
set -euo pipefail
model=${1:?model dir}; results=${2:?results dir}; sizes=${3:-base large}
root="$(cd "$(dirname "$0")/.." && pwd)"
export PYTHONPATH="$root/inference_images:$root/inference_images/validator${PYTHONPATH:+:$PYTHONPATH}"
export HF_HUB_OFFLINE=1 TRANSFORMERS_OFFLINE=1 TRANSFORMERS_VERBOSITY=error
mkdir -p "$results"
validator() { python3 -m sap_llm_validator "$@"; }

nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv,noheader | tee "$results/gpu.txt"
python3 -c 'import torch, transformers; print("torch", torch.__version__, "transformers", transformers.__version__)'
validator evaluate --artifacts "$model/model" --test "$model/test.jsonl" --heldout "$model/heldout.jsonl" \
  --device cuda --dtype bf16 --result "$results/evaluate.json" || true
validator smoke --artifacts "$model/model" --device cuda --dtype bf16 --result "$results/smoke.json" || true
validator benchmark --artifacts "$model/model" --documents 4096 --batch-sizes 1,8,32,128 --device cuda \
  --dtype bf16 --result "$results/benchmark_tiny.json" || true
for size in $sizes; do
  validator benchmark --build "$size" --documents 1024 --batch-sizes 1,8,32,128 --device cuda --dtype bf16 \
    --result "$results/benchmark_$size.json" || true
done
python3 - "$results" <<'PY'
import json, pathlib, sys
results = pathlib.Path(sys.argv[1])
for path in sorted(results.glob("*.json")):
    data = json.loads(path.read_text())
    if path.name.startswith("benchmark"):
        print(f"{path.stem}: {data.get('model')} on {data.get('device')} {data.get('dtype')}, "
              f"parameters {data.get('parameters')}")
        for row in data.get("runs", []):
            print(f"{path.stem}: batch {row['batch_size']:>4}  {row['docs_per_hour']:>14,.0f} docs/h  "
                  f"p50 {row['batch_latency_p50_seconds']:.4f} s  p95 {row['batch_latency_p95_seconds']:.4f} s  "
                  f"peak {row['peak_memory_gib']} GiB  util {row['gpu_utilisation']}")
    else:
        numbers = {f"{part}.{key}" if part else key: value
                   for part, values in [("", data), *((k, v) for k, v in data.items() if isinstance(v, dict))]
                   for key, value in values.items() if isinstance(value, (int, float)) and not isinstance(value, bool)}
        print(f"{path.stem}: passed={data.get('passed')} device={data.get('device')} "
              + ", ".join(f"{key}={value}" for key, value in numbers.items()))
PY
