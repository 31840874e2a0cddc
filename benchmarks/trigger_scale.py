"""How many SLO windows one triggerer process keeps on time: K of the release's window triggers in one event loop.

    .venv/bin/python benchmarks/trigger_scale.py [--triggers 50,200,500] [--window-s 30] [--warm-up-s 12]
        [--base-port 18380]

Starts its own live local stack (blue serving steady traffic, Prometheus scraping every second) and, for each K, runs
K ``SLOWindowTrigger``s as the triggerer runs them (their ``run()`` in one asyncio loop): each watches the spec's
health checks and SLOs on blue, with blue's readiness probe, at the rehearsal profile's interval (2 s), for
``--window-s``; their starts are spread over one interval, as windows of different releases are. Prints per K: the
lag between each check's due time and when it ran (p50 / p95 / max over every check of every window, from the
triggers' own ``check_lags_s``), the checks run, how the windows ended, and the CPU of this process (the triggerer)
and of the Prometheus it asks, each as a share of one core over the run.
Goal: p95 lag under 1 s at K = 200 on 2 cores.
"""

from __future__ import annotations

import argparse
import asyncio
import atexit
import os
import random
import shutil
import statistics
import sys
import tempfile
import time
from collections import Counter
from datetime import datetime, timedelta, timezone
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from operators.triggers import SLOWindowTrigger  # noqa: E402
from sap_llm_release.analysis.readiness import readiness_url  # noqa: E402
from sap_llm_release.rehearsal import local_stack  # noqa: E402
from sap_llm_release.spec import load_spec  # noqa: E402

SPEC = load_spec(ROOT / "specs" / "sap_llm.yaml")
PROFILE = "rehearsal"
TICKS = os.sysconf("SC_CLK_TCK")


def window_slos() -> list[dict]:
    """The release's health checks and SLOs as a window asks them, on blue's slot."""
    variables = {"colour": "blue", "rate_window": SPEC.rate_window(PROFILE), "service": SPEC.service}
    return [{"name": slo.name, "promql": slo.render(**variables), "op": slo.threshold.op,
             "threshold": slo.threshold.value, "no_data": slo.no_data.value}
            for slo in [*SPEC.analysis.health, *SPEC.analysis.slos]]


async def one_window(prometheus_url: str, ready_url: str, offset_s: float, window_s: float) -> dict:
    await asyncio.sleep(offset_s)
    now = datetime.now(timezone.utc)
    trigger = SLOWindowTrigger(
        prometheus_url=prometheus_url, slos=window_slos(), failure_limit=SPEC.analysis.failure_limit,
        interval_s=SPEC.analysis_interval(PROFILE).total_seconds(), window_start=now.isoformat(),
        window_end=(now + timedelta(seconds=window_s)).isoformat(), ready_url=ready_url)
    async for event in trigger.run():
        return event.payload
    raise RuntimeError("the trigger ended without an event")


async def run_windows(count: int, prometheus_url: str, ready_url: str, window_s: float) -> list[dict]:
    interval = SPEC.analysis_interval(PROFILE).total_seconds()
    return await asyncio.gather(*(one_window(prometheus_url, ready_url, random.uniform(0, interval), window_s)
                                  for _ in range(count)))


def cpu_seconds(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / TICKS  # utime + stime


def percentile(values: list[float], share: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(share * (len(ordered) - 1)))]


def measure(count: int, stack: dict, window_s: float) -> str:
    prometheus_pid = int((Path(stack["dir"]) / "prometheus.pid").read_text())
    cpu_before, prometheus_before, started = time.process_time(), cpu_seconds(prometheus_pid), time.monotonic()
    events = asyncio.run(run_windows(count, stack["prometheus_url"], readiness_url(stack["blue_url"]), window_s))
    wall = time.monotonic() - started
    cpu = (time.process_time() - cpu_before) / wall
    prometheus_cpu = (cpu_seconds(prometheus_pid) - prometheus_before) / wall
    lags = [lag for event in events for lag in event["check_lags_s"]]
    ended = Counter(event["status"] for event in events)
    return (f"K={count:>4}: lag p50 {statistics.median(lags):.3f} s, p95 {percentile(lags, 0.95):.3f} s, "
            f"max {max(lags):.3f} s over {len(lags)} checks; windows {dict(ended)}; CPU triggerer {cpu:.0%} "
            f"of a core, Prometheus {prometheus_cpu:.0%}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--triggers", default="50,200,500", help="comma-separated K")
    parser.add_argument("--window-s", type=float, default=30.0)
    parser.add_argument("--warm-up-s", type=float, default=12.0,
                        help="blue's traffic scraped before the windows start (the rehearsal's rate window is 10 s)")
    parser.add_argument("--base-port", type=int, default=18380)
    args = parser.parse_args()
    stack_dir = Path(tempfile.mkdtemp(prefix="trigger-scale-"))
    atexit.register(shutil.rmtree, stack_dir, ignore_errors=True)
    info = local_stack.up(stack_dir, base_port=args.base_port)
    try:
        time.sleep(args.warm_up_s)  # blue's traffic scraped for its rates, so the SLOs have data
        stack = {"dir": str(stack_dir), "prometheus_url": info["prometheus_url"],
                 "blue_url": f"http://127.0.0.1:{info['ports']['blue']}"}
        print(f"{len(window_slos())} queries and a readiness probe per check, every "
              f"{SPEC.analysis_interval(PROFILE).total_seconds():g} s, windows of {args.window_s:g} s, "
              f"{os.cpu_count()} CPUs")
        for count in (int(k) for k in args.triggers.split(",")):
            print(measure(count, stack, args.window_s), flush=True)
    finally:
        local_stack.down(stack_dir)


if __name__ == "__main__":
    main()
