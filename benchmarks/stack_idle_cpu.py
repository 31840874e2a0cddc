"""What the live local stack costs while a rehearsal waits out its windows: the CPU of each of its processes over a
quiet stretch (blue serving the steady traffic, the three Prometheus replicas scraping, nothing else happening).
Every test worker runs one such stack, so this is a share of the suite's two cores for as long as rehearsals run.

    .venv/bin/python benchmarks/stack_idle_cpu.py [--seconds 30] [--runs 3] [--base-port 18480]

Prints, per process of the stack, the median CPU over the runs as a share of one core, then the stack's total.
"""

from __future__ import annotations

import argparse
import atexit
import json
import os
import shutil
import statistics
import sys
import tempfile
import time
from collections import defaultdict
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from sap_llm_release.rehearsal import local_stack  # noqa: E402

TICKS = os.sysconf("SC_CLK_TCK")


def session_leaders(stack_dir: Path) -> dict[int, str]:
    """pid -> name of each process the stack started, each in its own session: the ``<name>.pid`` files, and the
    slots' state files of the local deployer (``{"pid": ..., "version": ...}``)."""
    leaders = {int(text): path.stem for path in stack_dir.glob("*.pid") if (text := path.read_text().strip())}
    for path in stack_dir.rglob("*.json"):
        try:
            state = json.loads(path.read_text())
        except (OSError, ValueError):
            continue
        if isinstance(state, dict) and {"pid", "version"} <= state.keys():
            leaders[int(state["pid"])] = f"{path.stem} (SAP_LLM server)"
    return leaders


def stack_processes(stack_dir: Path) -> dict[int, str]:
    """pid -> name for every process in one of the stack's sessions (nginx's workers with their master)."""
    leaders, found = session_leaders(stack_dir), {}
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            session = int((entry / "stat").read_text().rsplit(")", 1)[1].split()[3])
        except (OSError, IndexError, ValueError):
            continue
        if session in leaders:
            found[int(entry.name)] = leaders[session]
    return found


def cpu_seconds(pid: int) -> float:
    """User and system CPU of ``pid`` and of its waited-for children, in seconds (0 once it is gone)."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return 0.0
    return sum(int(value) for value in fields[11:15]) / TICKS


def one_run(stack_dir: Path, seconds: float) -> dict[str, float]:
    """Each process's CPU over ``seconds`` as a share of one core, summed by name (nginx has several processes)."""
    processes = stack_processes(stack_dir)
    before = {pid: cpu_seconds(pid) for pid in processes}
    time.sleep(seconds)
    shares: dict[str, float] = defaultdict(float)
    for pid, name in processes.items():
        shares[name] += (cpu_seconds(pid) - before[pid]) / seconds
    return shares


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=30.0)
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--base-port", type=int, default=18480)
    args = parser.parse_args()
    stack_dir = Path(tempfile.mkdtemp(prefix="stack-idle-"))
    atexit.register(shutil.rmtree, stack_dir, ignore_errors=True)
    local_stack.up(stack_dir, base_port=args.base_port)
    try:
        time.sleep(5)  # past the start-up: Prometheus has discovered and scraped its targets
        runs = [one_run(stack_dir.resolve(), args.seconds) for _ in range(args.runs)]
    finally:
        local_stack.down(stack_dir)
    names = sorted({name for run in runs for name in run}, key=lambda name: -statistics.median(
        run.get(name, 0.0) for run in runs))
    print(f"the idle local stack over {args.runs} runs of {args.seconds:g} s, {os.cpu_count()} CPUs:")
    for name in names:
        print(f"  {name:<28} median {statistics.median(run.get(name, 0.0) for run in runs):6.1%} of a core")
    totals = [sum(run.values()) for run in runs]
    print(f"stack total: median {statistics.median(totals):.1%} of a core (min {min(totals):.1%}, "
          f"max {max(totals):.1%})")


if __name__ == "__main__":
    main()
