"""Recorded Prometheus history for the audits' tests, benchmark and rehearsal (``make demo-audits``): days of the
service's series, healthy or with injected problems, written as OpenMetrics, backfilled into a TSDB with promtool and
served by a real Prometheus.

    start = history_start(4)
    history = write_openmetrics(tmp / "history.om", start=start, days=4, step_s=60,
                                problems=[ErrorSpike(day=2, hours=(10, 14), error_ratio=0.05)])
    with prometheus_over(backfill(history, tmp / "tsdb"), port) as url:
        ...  # /api/v1/query?time=... over the history

Every series has a sample every ``step_s`` from ``start`` to ``start + days`` (both included); choose ``start`` so
that the history ends before now (``history_start`` does). Backfilled series carry no staleness markers: an instant
query still sees a series' last sample for Prometheus's lookback (5 min) after it (``ALERTS`` ends each interval
with a NaN sample instead, which ``ALERTS == 1`` drops), and an instant query more than 5 min past the history's end
sees nothing: evaluate at the history's end (``time=``), not at now.
"""

from __future__ import annotations

import contextlib
import math
import operator
import subprocess
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, replace
from datetime import datetime, timedelta, timezone
from functools import lru_cache
from itertools import accumulate
from pathlib import Path
from typing import TextIO

import httpx

from sap_llm_release.polling import poll_until

SERVICE = 'job="sap-llm",colour="blue"'
LATENCY_BOUNDS = (0.1, 0.25, 0.5, 1.0, 1.5, 2.5, 5.0)
LATENCY_LABELS = ("0.1", "0.25", "0.5", "1.0", "1.5", "2.5", "5.0", "+Inf")
LATENCY_SIGMA = 0.5  # spread of the log-normal request latency
# promtool re-reads the whole file once per block: 2 h blocks (its default) make that 360 reads for 30 days
MAX_BLOCK_DURATION = "10000h"


@dataclass(frozen=True)
class _Hour:
    """What one hour of the history looks like."""

    docs_per_hour: float
    error_ratio: float
    p95_s: float
    gpu_util_pct: float
    index: int = 0  # the hour's place in the history
    document_mix: tuple[tuple[str, float], ...] = ()  # (document type, weight); () leaves documents unlabelled
    confidence_mix: tuple[tuple[float, float], ...] = ()  # (bin's upper bound, weight); () writes no histogram


@dataclass(frozen=True)
class Healthy:
    """The service on a good day; each value swings by ``swing`` (relative) in a deterministic daily wave."""

    docs_per_hour: float = 6000.0
    error_ratio: float = 0.002
    p95_s: float = 0.4
    gpu_util_pct: float = 70.0
    touchless_ratio: float = 0.9
    web_searches_per_document: float = 0.005  # Appendix C: 10K web-search queries a month at ~2M documents
    replicas: int = 1  # pods serving blue, each its own ``up`` series
    swing: float = 0.05
    document_mix: tuple[tuple[str, float], ...] = ()  # documents processed by type (weights); () for no label
    # the model's confidence in the documents processed, by bin (upper bound, weight); () for no histogram
    confidence_mix: tuple[tuple[float, float], ...] = ()

    def hour(self, index: int) -> _Hour:
        wave = 1 + self.swing * math.sin(2 * math.pi * (index % 24) / 24 + index // 24)
        return _Hour(self.docs_per_hour * wave, self.error_ratio * wave, self.p95_s * wave, self.gpu_util_pct * wave,
                     index, self.document_mix, self.confidence_mix)


@dataclass(frozen=True)
class _HoursOfDay:
    day: int  # 0 is the history's first day
    hours: tuple[int, int]  # first hour included, last excluded: (10, 14) is 10:00 to 14:00

    def covered(self) -> range:
        return range(24 * self.day + self.hours[0], 24 * self.day + self.hours[1])


@dataclass(frozen=True)
class ErrorSpike(_HoursOfDay):
    """This share of the requests is answered 500 during those hours."""

    error_ratio: float

    def shape(self, hour: _Hour) -> _Hour:
        return replace(hour, error_ratio=self.error_ratio)


@dataclass(frozen=True)
class LatencyRegression(_HoursOfDay):
    """Request latency shifted so that the histogram's p95 (as ``histogram_quantile`` reads it) is ``p95_s``."""

    p95_s: float

    def shape(self, hour: _Hour) -> _Hour:
        return replace(hour, p95_s=self.p95_s)


@dataclass(frozen=True)
class ThroughputDip(_HoursOfDay):
    """Only this many documents (requests) an hour arrive during those hours."""

    docs_per_hour: float

    def shape(self, hour: _Hour) -> _Hour:
        return replace(hour, docs_per_hour=self.docs_per_hour)


@dataclass(frozen=True)
class _Days:
    days: tuple[int, int]  # the first and the last day covered, both included

    def covered(self) -> range:
        return range(24 * self.days[0], 24 * (self.days[1] + 1))


@dataclass(frozen=True)
class GpuUnderuse(_Days):
    """The GPU runs at ``utilisation_pct`` all day from the first to the last of ``days`` (both included)."""

    utilisation_pct: float

    def shape(self, hour: _Hour) -> _Hour:
        return replace(hour, gpu_util_pct=self.utilisation_pct)


@dataclass(frozen=True)
class Trend(_Days):
    """``quantity`` (``gpu_util_pct`` or ``docs_per_hour``) follows a straight line over ``days``: ``start`` at the
    first day's midnight, ``per_day`` more each day, plus a daily cosine wobble of ``wobble`` around the line."""

    quantity: str
    start: float
    per_day: float
    wobble: float = 0.0

    def line_at(self, days: float) -> float:
        """The line (without the wobble) ``days`` after the first day's midnight."""
        return self.start + self.per_day * days

    def shape(self, hour: _Hour) -> _Hour:
        days = (hour.index - self.covered()[0]) / 24
        return replace(hour, **{self.quantity: self.line_at(days) + self.wobble * math.cos(2 * math.pi * days)})


@dataclass(frozen=True)
class MixShift(_Days):
    """The documents processed follow another document-type mix (weights) over ``days``; the history must be
    written with a ``Healthy.document_mix``."""

    document_mix: tuple[tuple[str, float], ...]

    def shape(self, hour: _Hour) -> _Hour:
        if not hour.document_mix:
            raise ValueError("a MixShift needs a history written with Healthy(document_mix=...)")
        return replace(hour, document_mix=self.document_mix)


@dataclass(frozen=True)
class ConfidenceShift(_Days):
    """The model's confidence in the documents processed follows another histogram (weights by bin) over ``days``;
    the history must be written with a ``Healthy.confidence_mix`` over the same bins."""

    confidence_mix: tuple[tuple[float, float], ...]

    def shape(self, hour: _Hour) -> _Hour:
        if {bound for bound, _ in hour.confidence_mix} != {bound for bound, _ in self.confidence_mix}:
            raise ValueError("a ConfidenceShift needs a history written with Healthy(confidence_mix=...) over its bins")
        return replace(hour, confidence_mix=self.confidence_mix)


@dataclass(frozen=True)
class AlertFired:
    """An alert firing for ``minutes`` from ``start_hour`` of ``day``: Prometheus's ``ALERTS`` series is 1 then."""

    day: int
    start_hour: float
    minutes: float
    alertname: str
    severity: str

    def series(self) -> str:
        return (f'ALERTS{{alertname="{self.alertname}",alertstate="firing",severity="{self.severity}",'
                f'colour="blue",job="sap-llm"}}')

    def firing(self, start_ts: int, step_s: int) -> range:
        """The sample timestamps inside the interval."""
        begin = start_ts + 86400 * self.day + round(3600 * self.start_hour)
        first = start_ts + math.ceil((begin - start_ts) / step_s) * step_s
        return range(first, begin + round(60 * self.minutes), step_s)


Problem = (ErrorSpike | LatencyRegression | ThroughputDip | GpuUnderuse | Trend | MixShift | ConfidenceShift
           | AlertFired)


def history_start(days: int, now: datetime | None = None) -> datetime:
    """Midnight UTC ``days`` days before today's: ``days`` whole days that end at today's midnight."""
    today = (now or datetime.now(timezone.utc)).astimezone(timezone.utc)
    return today.replace(hour=0, minute=0, second=0, microsecond=0) - timedelta(days=days)


def write_openmetrics(path: Path, *, start: datetime, days: int, step_s: int, problems: Sequence[Problem] = (),
                      healthy: Healthy = Healthy()) -> Path:
    """Write ``days`` days of the service's series from ``start`` (midnight UTC), a sample every ``step_s`` (a
    divisor of an hour), with ``problems`` injected; return ``path``."""
    if start.utcoffset() != timedelta(0) or start.time() != datetime.min.time():
        raise ValueError(f"the history starts at a midnight UTC, not {start.isoformat()}")
    if step_s <= 0 or 3600 % step_s:
        raise ValueError(f"step_s must divide an hour, not {step_s}")
    plan = _plan(days, problems, healthy)
    start_ts = int(start.timestamp())
    stamps = [f" {ts}\n" for ts in range(start_ts, start_ts + 86400 * days + 1, step_s)]
    with path.open("w") as out:
        _write_service(out, plan, 3600 // step_s, stamps, healthy)
        _write_alerts(out, [problem for problem in problems if isinstance(problem, AlertFired)], start_ts, step_s)
        out.write("# EOF\n")
    return path


def write_service_log(path: Path, *, start: datetime, days: int, problems: Sequence[Problem] = (),
                      healthy: Healthy = Healthy()) -> Path:
    """Write the service's log over the same days as :func:`write_openmetrics` (the reference server's format, UTC
    stamps): a summary line a minute and one ERROR line per failed document, spread evenly over its hour."""
    lines = []
    for hour in _plan(days, problems, healthy):
        began = start + timedelta(hours=hour.index)
        failed = round(hour.docs_per_hour * hour.error_ratio)
        events = [(minute * 60.0, f"INFO colour=blue documents={hour.docs_per_hour / 60:.0f} in the last minute")
                  for minute in range(60)]
        events += [(3600.0 * (n + 0.5) / failed, f"ERROR colour=blue document=h{hour.index}-{n} inference failed")
                   for n in range(failed)]
        lines += [f"{began + timedelta(seconds=offset):%Y-%m-%d %H:%M:%S},{int(offset * 1000) % 1000:03d} {text}\n"
                  for offset, text in sorted(events)]
    path.write_text("".join(lines))
    return path


def _plan(days: int, problems: Sequence[Problem], healthy: Healthy) -> list[_Hour]:
    """Each hour of the history: healthy, then reshaped by the problems that cover it."""
    plan = [healthy.hour(index) for index in range(24 * days)]
    for problem in problems:
        if isinstance(problem, AlertFired):
            continue
        covered = problem.covered()
        if not covered or covered[0] < 0 or covered[-1] >= len(plan):
            raise ValueError(f"{problem} is not within the {days} days of the history")
        for index in covered:
            plan[index] = problem.shape(plan[index])
    return plan


def documents_processed(days: int, problems: Sequence[Problem] = (), healthy: Healthy = Healthy()) -> list[float]:
    """The documents processed in each hour of the history (its counter grows by them, floored to whole ones)."""
    return [hour.docs_per_hour * (1 - hour.error_ratio) for hour in _plan(days, problems, healthy)]


def _write_service(out: TextIO, plan: list[_Hour], steps_per_hour: int, stamps: list[str], healthy: Healthy) -> None:
    """The service's families, blue's requests, latency, documents, web-search calls, up per replica and the GPU's
    utilisation."""
    requests = [hour.docs_per_hour for hour in plan]
    answered_ok = [hour.docs_per_hour * (1 - hour.error_ratio) for hour in plan]
    latency = [_latency_shape(hour.p95_s) for hour in plan]
    out.write("# TYPE sap_llm_requests counter\n")
    for status, per_hour in (("200", answered_ok), ("500", [hour.docs_per_hour * hour.error_ratio for hour in plan])):
        _write_series(out, f'sap_llm_requests_total{{{SERVICE},endpoint="/v1/documents",status="{status}"}}',
                      _counter(per_hour, steps_per_hour), stamps)
    out.write("# TYPE sap_llm_request_duration_seconds histogram\n")
    for index, le in enumerate(LATENCY_LABELS):
        shares = [shares[index] for shares, _ in latency]
        _write_series(out, f'sap_llm_request_duration_seconds_bucket{{{SERVICE},le="{le}"}}',
                      _counter(list(map(operator.mul, requests, shares)), steps_per_hour), stamps)
    total_seconds = [count * mean for count, (_, mean) in zip(requests, latency, strict=True)]
    _write_series(out, f"sap_llm_request_duration_seconds_sum{{{SERVICE}}}",
                  _counter(total_seconds, steps_per_hour, whole=False), stamps)
    _write_series(out, f"sap_llm_request_duration_seconds_count{{{SERVICE}}}", _counter(requests, steps_per_hour),
                  stamps)
    _write_documents(out, plan, answered_ok, steps_per_hour, stamps)
    _write_confidence(out, plan, answered_ok, steps_per_hour, stamps)
    out.write("# TYPE sap_llm_touchless counter\n")
    _write_series(out, f"sap_llm_touchless_total{{{SERVICE}}}",
                  _counter([docs * healthy.touchless_ratio for docs in answered_ok], steps_per_hour), stamps)
    out.write("# TYPE sap_llm_web_search_requests counter\n")
    _write_series(out, f"sap_llm_web_search_requests_total{{{SERVICE}}}",
                  _counter([docs * healthy.web_searches_per_document for docs in answered_ok], steps_per_hour), stamps)
    out.write("# TYPE up gauge\n")
    for replica in range(healthy.replicas):
        _write_series(out, f'up{{{SERVICE},instance="blue-{replica}:8080"}}', _gauge(["1"] * len(plan), steps_per_hour),
                      stamps)
    out.write("# TYPE DCGM_FI_DEV_GPU_UTIL gauge\n")
    _write_series(out, 'DCGM_FI_DEV_GPU_UTIL{job="dcgm-exporter",gpu="0",Hostname="gpu-node-1"}',
                  _gauge([f"{hour.gpu_util_pct:.1f}" for hour in plan], steps_per_hour), stamps)


def _write_documents(out: TextIO, plan: list[_Hour], answered_ok: list[float], steps_per_hour: int,
                     stamps: list[str]) -> None:
    """Documents processed (a document answered 500 is not): one series, or one per document type of the hours'
    mixes (each hour's documents split by its mix's weights)."""
    out.write("# TYPE sap_llm_documents_processed counter\n")
    if not plan[0].document_mix:
        _write_series(out, f"sap_llm_documents_processed_total{{{SERVICE}}}", _counter(answered_ok, steps_per_hour),
                      stamps)
        return
    mixes = [dict(hour.document_mix) for hour in plan]
    for document_type in sorted({name for mix in mixes for name in mix}):
        per_hour = [docs * mix.get(document_type, 0.0) / sum(mix.values()) for docs, mix in zip(answered_ok, mixes,
                                                                                                 strict=True)]
        _write_series(out, f'sap_llm_documents_processed_total{{{SERVICE},document_type="{document_type}"}}',
                      _counter(per_hour, steps_per_hour), stamps)


def _write_confidence(out: TextIO, plan: list[_Hour], answered_ok: list[float], steps_per_hour: int,
                      stamps: list[str]) -> None:
    """The model's confidence histogram over the documents processed, each hour's split by its mix's weights
    (cumulative buckets, then +Inf and the count); nothing for a history without a confidence mix."""
    if not plan[0].confidence_mix:
        return
    out.write("# TYPE sap_llm_prediction_confidence histogram\n")
    mixes = [dict(hour.confidence_mix) for hour in plan]
    for bound in sorted(mixes[0]):
        per_hour = [docs * sum(weight for upper, weight in mix.items() if upper <= bound) / sum(mix.values())
                    for docs, mix in zip(answered_ok, mixes, strict=True)]
        _write_series(out, f'sap_llm_prediction_confidence_bucket{{{SERVICE},le="{bound:g}"}}',
                      _counter(per_hour, steps_per_hour), stamps)
    for series in (f'sap_llm_prediction_confidence_bucket{{{SERVICE},le="+Inf"}}',
                   f"sap_llm_prediction_confidence_count{{{SERVICE}}}"):
        _write_series(out, series, _counter(answered_ok, steps_per_hour), stamps)


def _write_alerts(out: TextIO, alerts: list[AlertFired], start_ts: int, step_s: int) -> None:
    """One ``ALERTS`` series per alert name and severity, 1 at each sample within one of its intervals and NaN at
    the sample after each interval: a backfill holds no staleness marker, and without it an instant query would
    see the alert firing for Prometheus's lookback (5 min) past its end; ``ALERTS == 1`` drops the NaN, as a live
    Prometheus's staleness marker ends the series."""
    firing: dict[str, set[int]] = {}
    for alert in alerts:
        firing.setdefault(alert.series(), set()).update(alert.firing(start_ts, step_s))
    if firing:
        out.write("# TYPE ALERTS gauge\n")
    for series, stamps in firing.items():
        ends = {ts + step_s for ts in stamps} - stamps
        out.write("".join(f"{series} {'1' if ts in stamps else 'NaN'} {ts}\n" for ts in sorted(stamps | ends)))


def _write_series(out: TextIO, series: str, values: list[str], stamps: list[str]) -> None:
    """One series' samples, a value and a timestamp a line, in one write."""
    prefix = f"{series} "
    out.write(prefix + prefix.join(map(operator.add, values, stamps)))


def _counter(per_hour: list[float], steps_per_hour: int, whole: bool = True) -> list[str]:
    """A counter from 0 at the first sample that grows by ``per_hour[i]`` evenly over hour ``i``; ``whole``
    counts whole events (floored)."""
    increments: list[float] = []
    for increase in per_hour:
        increments += [increase / steps_per_hour] * steps_per_hour
    values = accumulate(increments, initial=0.0)
    return list(map(str, map(int, values) if whole else values))


def _gauge(per_hour: list[str], steps_per_hour: int) -> list[str]:
    """A gauge that holds ``per_hour[i]`` through hour ``i`` (and the last hour's value at the history's end)."""
    values: list[str] = []
    for value in per_hour:
        values += [value] * steps_per_hour
    values.append(per_hour[-1])
    return values


@lru_cache(maxsize=None)
def _latency_shape(p95_s: float) -> tuple[tuple[float, ...], float]:
    """The share of requests in each cumulative bucket and the mean latency of a log-normal latency whose
    interpolated p95 (as ``histogram_quantile`` computes it from the buckets) is ``p95_s``."""
    if not LATENCY_BOUNDS[0] <= p95_s < LATENCY_BOUNDS[-1]:
        raise ValueError(f"the histogram can show a p95 from {LATENCY_BOUNDS[0]} s to below {LATENCY_BOUNDS[-1]} s")
    low, high = math.log(0.001), math.log(10.0)  # the log of the median, bisected
    for _ in range(50):
        log_median = (low + high) / 2
        if _histogram_quantile(0.95, _bucket_shares(log_median)) < p95_s:
            low = log_median
        else:
            high = log_median
    return _bucket_shares(log_median), math.exp(log_median + LATENCY_SIGMA**2 / 2)


def _bucket_shares(log_median: float) -> tuple[float, ...]:
    def below(bound: float) -> float:
        return 0.5 * (1 + math.erf((math.log(bound) - log_median) / (LATENCY_SIGMA * math.sqrt(2))))

    return (*map(below, LATENCY_BOUNDS), 1.0)


def _histogram_quantile(q: float, shares: tuple[float, ...]) -> float:
    """Prometheus's ``histogram_quantile`` over cumulative bucket shares: linear within the bucket holding it."""
    lower, below = 0.0, 0.0
    for bound, share in zip(LATENCY_BOUNDS, shares, strict=False):  # +Inf's share (the last) has no bound
        if share >= q:
            return lower + (bound - lower) * (q - below) / (share - below)
        lower, below = bound, share
    return lower


def backfill(openmetrics: Path, tsdb_dir: Path) -> Path:
    """Turn the OpenMetrics file into TSDB blocks in ``tsdb_dir`` with promtool; return ``tsdb_dir``."""
    tsdb_dir.mkdir(parents=True, exist_ok=True)
    command = ["promtool", "tsdb", "create-blocks-from", "openmetrics", f"--max-block-duration={MAX_BLOCK_DURATION}",
               "--quiet", str(openmetrics), str(tsdb_dir)]
    try:
        subprocess.run(command, check=True, capture_output=True, text=True)
    except subprocess.CalledProcessError as exc:
        raise RuntimeError(f"promtool could not backfill {openmetrics}: {exc.stderr.strip()}") from exc
    return tsdb_dir


@contextlib.contextmanager
def prometheus_over(tsdb_dir: Path, port: int, alertmanager: str | None = None) -> Iterator[str]:
    """A Prometheus on 127.0.0.1:``port`` over the TSDB in ``tsdb_dir``, scraping nothing and sending alerts to
    ``alertmanager`` (``host:port``) when given; yields its URL once it is ready and stops it on exit. Its config and
    log are written next to the TSDB."""
    config = tsdb_dir.parent / f"{tsdb_dir.name}-prometheus.yml"
    alerting = f"alerting:\n  alertmanagers:\n    - static_configs:\n        - targets: ['{alertmanager}']\n" \
        if alertmanager else ""
    config.write_text("global:\n  evaluation_interval: 1m\n" + alerting)
    url = f"http://127.0.0.1:{port}"
    log_path = tsdb_dir.parent / f"{tsdb_dir.name}-prometheus.log"
    with log_path.open("ab") as log:
        process = subprocess.Popen(
            ["prometheus", f"--config.file={config}", f"--storage.tsdb.path={tsdb_dir}",
             "--storage.tsdb.retention.time=3650d", f"--web.listen-address=127.0.0.1:{port}"],
            stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
        )
    try:
        _wait_ready(url, process, log_path)
        if alertmanager:
            _wait_until_alerting(url, alertmanager)
        yield url
    finally:
        process.terminate()
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


def _wait_until_alerting(url: str, alertmanager: str, timeout_s: float = 30) -> None:
    """Until Prometheus lists ``alertmanager`` among its active ones (it discovers it seconds after it is ready)."""
    def listed() -> bool:
        answer = httpx.get(f"{url}/api/v1/alertmanagers", timeout=2).json()["data"]["activeAlertmanagers"]
        return any(alertmanager in manager["url"] for manager in answer)

    if not poll_until(lambda: _answered(listed), bool, timeout_s=timeout_s, interval_s=0.2):
        raise RuntimeError(f"Prometheus on {url} did not find its Alertmanager {alertmanager} within {timeout_s:.0f}s")


def _answered(ask) -> bool:
    try:
        return bool(ask())
    except httpx.HTTPError:
        return False


def _wait_ready(url: str, process: subprocess.Popen, log_path: Path, timeout_s: float = 30) -> None:
    """Until ``/-/ready`` answers 200; fails at once if Prometheus exits (a port taken, a TSDB it cannot open)."""
    def ready() -> bool | None:
        if process.poll() is not None:
            return None
        try:
            return httpx.get(f"{url}/-/ready", timeout=2).status_code == 200
        except httpx.HTTPError:
            return False

    answer = poll_until(ready, lambda result: result is not False, timeout_s=timeout_s, interval_s=0.1)
    if not answer:
        log_tail = log_path.read_text(errors="replace")[-2000:]
        raise RuntimeError(f"Prometheus on {url} was not ready within {timeout_s:.0f}s:\n{log_tail}")
