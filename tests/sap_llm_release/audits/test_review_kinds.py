"""The weekly and monthly review kinds (capacity forecast, input drift, feature usage, incident retrospective) judged
against a real Prometheus over 28 backfilled days, with the checks as the spec defines them:

    days 0-6    healthy, the training set's document-type mix
    days 7-13   GPU utilisation rising 1.5 points a day from 66 % (a cosine wobble of 2 points around the line)
    days 14-20  throughput falling 150 docs/h a day from 6,400; document-type mix and the model's confidence
                shifted (through day 27)
    day 24      a critical alert (counted) and a warning alert (not)
"""

from __future__ import annotations

import json
import math
import re
from collections import Counter
from datetime import datetime, timedelta, timezone

import pytest
from sap_llm_contract.documents import synthetic_documents, write_jsonl
from sap_llm_contract.taxonomy import CONFIDENCE_BUCKETS

from sap_llm_release.analysis.prometheus import PrometheusProvider
from sap_llm_release.audits.base import AuditContext
from sap_llm_release.audits.model import Severity
from sap_llm_release.audits.runner import judge
from sap_llm_release.audits.spec import AuditCheck
from sap_llm_release.evidence import Evidence, Verdict
from sap_llm_release.ledger import Ledger, Writer
from sap_llm_release.rehearsal.history import (
    AlertFired,
    ConfidenceShift,
    Healthy,
    MixShift,
    Trend,
    backfill,
    history_start,
    prometheus_over,
    write_openmetrics,
)
from tests.sap_llm_release.conftest import find_free_port

DAYS = 28
STEP_S = 300
TRAINING = list(synthetic_documents(300, seed=1))
TRAINING_MIX = tuple(sorted(Counter(document["document_type"] for document in TRAINING).items()))
SHIFTED_MIX = tuple((name, 40.0 if name == "supplier_invoice" else 20.0 if name == "purchase_order" else 3.0)
                    for name, _ in TRAINING_MIX)
# the rehearsal model's evaluation on its test set, and a month of documents it is much less sure of
EVALUATED_CONFIDENCE = dict(zip(CONFIDENCE_BUCKETS, (0, 0, 0, 0, 0, 3, 10, 53, 81, 3), strict=True))
INNER_BINS = [f"{lower:g}-{upper:g}" for lower, upper in zip(CONFIDENCE_BUCKETS[:-1], CONFIDENCE_BUCKETS[1:],
                                                              strict=True)]
BINS = dict(zip([*CONFIDENCE_BUCKETS, math.inf], ["0-0.5", *INNER_BINS, "over 1"], strict=True))
LOWER_CONFIDENCE = dict(zip(CONFIDENCE_BUCKETS, (5, 10, 10, 15, 15, 15, 10, 10, 8, 2), strict=True))
HEALTHY = Healthy(document_mix=TRAINING_MIX, confidence_mix=tuple(EVALUATED_CONFIDENCE.items()))
GPU_RISE = Trend(days=(7, 13), quantity="gpu_util_pct", start=66.0, per_day=1.5, wobble=2.0)
THROUGHPUT_FALL = Trend(days=(14, 20), quantity="docs_per_hour", start=6400.0, per_day=-150.0)
CRITICAL_ALERT = AlertFired(day=24, start_hour=9, minutes=45, alertname="SapLlmHighErrorRate", severity="critical")
PROBLEMS = (GPU_RISE, THROUGHPUT_FALL, MixShift(days=(14, 27), document_mix=SHIFTED_MIX),
            ConfidenceShift(days=(14, 27), confidence_mix=tuple(LOWER_CONFIDENCE.items())), CRITICAL_ALERT,
            AlertFired(day=24, start_hour=15, minutes=20, alertname="SapLlmGpuHot", severity="warning"))
WRITER = Writer(dag_id="sap_llm_release", run_id="manual__1", task_id="record", try_number=1)
# the fit reads each hour's value at the hour's end (up to an hour late) and the wobble is sampled hourly
CROSSING_TOLERANCE_DAYS = 0.15


@pytest.fixture(scope="module")
def prometheus(tmp_path_factory):
    """A Prometheus over the 28 days; yields its provider and the history's first midnight."""
    start = history_start(DAYS)
    directory = tmp_path_factory.mktemp("review-history")
    history = write_openmetrics(directory / "history.om", start=start, days=DAYS, step_s=STEP_S, problems=PROBLEMS,
                                healthy=HEALTHY)
    with prometheus_over(backfill(history, directory / "tsdb"), find_free_port()) as url:
        yield PrometheusProvider(url, timeout_s=30), start


def context_over(prometheus, first_day: float, last_day: float, **extra) -> AuditContext:
    """The context of a period from ``first_day``'s midnight to ``last_day``'s (days of the history)."""
    provider, start = prometheus
    return AuditContext(service="sap-llm", period_start=start + timedelta(days=first_day),
                        period_end=start + timedelta(days=last_day), step=timedelta(hours=1), metrics=provider,
                        **extra)


def with_params(check: AuditCheck, **params) -> AuditCheck:
    return AuditCheck.model_validate({**check.model_dump(), "params": {**check.params, **params}})


# capacity_forecast


def test_a_healthy_week_forecasts_no_crossing_within_the_horizon(spec, prometheus):
    check = spec.audits.weekly.check("capacity_forecast")
    finding = judge(check, context_over(prometheus, 0, 7))
    assert finding.severity is Severity.OK, finding.detail
    assert (finding.measured, finding.measured_text) == (None, "no crossing within 90 days")
    assert "gpu_utilisation: linear fit over 168 hourly points" in finding.detail
    assert "stays inside the 0.6-0.8 band" in finding.detail and "stays above 5000 docs/h" in finding.detail
    assert [series.name for series in finding.series] == ["gpu_utilisation", "gpu_utilisation forecast",
                                                          "throughput", "throughput forecast"]


def test_rising_gpu_utilisation_leaves_the_band_on_the_day_the_trend_reaches_80_percent(spec, prometheus):
    check = spec.audits.weekly.check("capacity_forecast")
    context = context_over(prometheus, 7, 14)
    finding = judge(check, context)
    days_to_80 = (80 - GPU_RISE.start) / GPU_RISE.per_day - 7  # from the line's start to the period's end
    assert finding.measured == pytest.approx(days_to_80, abs=CROSSING_TOLERANCE_DAYS)
    assert finding.severity is Severity.CRITICAL  # within the spec's 7 days
    assert finding.day == (context.period_end + timedelta(days=finding.measured)).date()
    assert re.search(r"gpu_utilisation: linear fit over 168 hourly points, slope \+0\.01\d*/day, residual SE "
                     r"0\.01\d*", finding.detail), finding.detail
    forecast = next(series for series in finding.series if series.name == "gpu_utilisation forecast")
    assert forecast.points[-1][0] > context.period_end.timestamp()
    assert forecast.points[-1][1] == pytest.approx(0.80, abs=1e-6)


def test_falling_throughput_crosses_the_floor_on_the_day_the_trend_reaches_5000(spec, prometheus):
    check = spec.audits.weekly.check("capacity_forecast")
    finding = judge(check, context_over(prometheus, 14, 21))
    processed = 1 - HEALTHY.error_ratio  # documents answered 500 are not processed
    days_to_floor = (5000 / processed - THROUGHPUT_FALL.start) / THROUGHPUT_FALL.per_day - 7
    assert finding.measured == pytest.approx(days_to_floor, abs=CROSSING_TOLERANCE_DAYS)
    assert "throughput: linear fit" in finding.detail
    assert f"falls under 5000 docs/h in {finding.measured:.1f} days" in finding.detail


def test_a_forecast_without_points_is_no_data(spec, prometheus):
    finding = judge(spec.audits.weekly.check("capacity_forecast"), context_over(prometheus, -14, -7))
    assert (finding.measured, finding.severity) == (None, Severity.CRITICAL)
    assert "no data: gpu_utilisation" in finding.detail and "a fit needs 3" in finding.detail


# input_drift


@pytest.fixture(scope="module")
def training_set(tmp_path_factory):
    path = tmp_path_factory.mktemp("training") / "train.jsonl"
    write_jsonl(path, iter(TRAINING))
    return path


def expected_psi(training: tuple[tuple[str, float], ...], production: tuple[tuple[str, float], ...]) -> float:
    before, after = dict(training), dict(production)
    return sum((after[name] / sum(after.values()) - before[name] / sum(before.values()))
               * math.log((after[name] / sum(after.values())) / (before[name] / sum(before.values())))
               for name in before)


def test_production_with_the_training_mix_is_stable(spec, prometheus, training_set):
    check = with_params(spec.audits.monthly.check("input_drift"), training_documents=str(training_set))
    finding = judge(check, context_over(prometheus, 0, 14))
    assert finding.severity is Severity.OK, finding.detail
    assert finding.measured < 0.01
    assert set(finding.breakdown) == {name for name, _ in TRAINING_MIX}


def test_a_shifted_document_type_mix_is_over_0_2_and_recommends_retraining(spec, prometheus, training_set):
    check = with_params(spec.audits.monthly.check("input_drift"), training_documents=str(training_set))
    finding = judge(check, context_over(prometheus, 14, 28))
    assert finding.measured == pytest.approx(expected_psi(TRAINING_MIX, SHIFTED_MIX), rel=0.02)
    assert finding.measured > 0.2 and finding.severity is Severity.CRITICAL
    assert "retraining recommended" in finding.detail
    assert max(finding.breakdown, key=finding.breakdown.get) == "supplier_invoice"
    assert sum(finding.breakdown.values()) == pytest.approx(finding.measured, abs=1e-5)


@pytest.mark.parametrize("label, days, why", [
    ("customer", (0, 14), "carry no customer label"),
    ("document_type", (-14, -7), "no document was counted"),
])
def test_drift_without_a_production_mix_is_no_data(spec, prometheus, training_set, label, days, why):
    check = with_params(spec.audits.monthly.check("input_drift"), training_documents=str(training_set),
                        production_label=label)
    finding = judge(check, context_over(prometheus, *days))
    assert finding.measured is None and finding.severity is Severity(check.no_data) is Severity.WARNING
    assert why in finding.detail


def test_drift_without_the_training_set_is_no_data(spec, prometheus, tmp_path):
    check = with_params(spec.audits.monthly.check("input_drift"), training_documents=str(tmp_path / "absent.jsonl"))
    finding = judge(check, context_over(prometheus, 0, 14))
    assert finding.measured is None and finding.severity is Severity(check.no_data) is Severity.WARNING
    assert "cannot be read" in finding.detail


# confidence_drift


@pytest.fixture(scope="module")
def evaluation(tmp_path_factory):
    """The model's evaluation as the validator writes it, with its confidence histogram over the test set."""
    path = tmp_path_factory.mktemp("model") / "evaluation.json"
    histogram = {**{f"{bound:g}": count for bound, count in EVALUATED_CONFIDENCE.items()}, "+Inf": 0}
    path.write_text(json.dumps({"kind": "evaluate", "vision_encoder": {"confidence_histogram": histogram}}))
    return path


def confidence_terms(reference: dict[float, float], production: dict[float, float]) -> dict[str, float]:
    """Each bin's PSI term, an empty bin at the check's floor share (1e-4)."""
    def shares(counts):
        return {bound: max(count / sum(counts.values()), 1e-4) for bound, count in counts.items()}

    before, after = shares(reference), shares(production)
    return {BINS[bound]: (after[bound] - before[bound]) * math.log(after[bound] / before[bound]) for bound in before}


def test_production_as_confident_as_the_evaluation_is_stable(spec, prometheus, evaluation):
    check = with_params(spec.audits.monthly.check("confidence_drift"), reference_evaluation=str(evaluation))
    finding = judge(check, context_over(prometheus, 0, 14))
    assert finding.severity is Severity.OK, finding.detail
    assert finding.measured < 0.01
    assert list(BINS.values())[:2] == ["0-0.5", "0.5-0.7"] and list(BINS.values())[-2:] == ["0.999-1", "over 1"]
    assert set(finding.breakdown) == set(BINS.values())


def test_production_much_less_confident_than_the_evaluation_recommends_retraining(spec, prometheus, evaluation):
    check = with_params(spec.audits.monthly.check("confidence_drift"), reference_evaluation=str(evaluation))
    finding = judge(check, context_over(prometheus, 14, 28))
    expected = confidence_terms(EVALUATED_CONFIDENCE, LOWER_CONFIDENCE)
    assert finding.measured == pytest.approx(sum(expected.values()), rel=0.02)
    assert finding.measured > 0.2 and finding.severity is Severity.CRITICAL
    assert "retraining recommended" in finding.detail and "production's (" in finding.detail
    assert max(finding.breakdown, key=finding.breakdown.get) == max(expected, key=expected.get)


def test_confidence_drift_without_production_observations_is_no_data(spec, prometheus, evaluation):
    check = with_params(spec.audits.monthly.check("confidence_drift"), reference_evaluation=str(evaluation))
    finding = judge(check, context_over(prometheus, -14, -7))
    assert finding.measured is None and finding.severity is Severity(check.no_data) is Severity.WARNING
    assert "no document's confidence was observed" in finding.detail


@pytest.mark.parametrize("evaluation_text, why", [
    (None, "cannot be read"),
    ('{"vision_encoder": {}}', "holds no vision_encoder.confidence_histogram"),
    ('{"vision_encoder": {"confidence_histogram": {"0.9": 50, "1.0": 100, "+Inf": 0}}}', "must bin alike"),
])
def test_confidence_drift_without_a_usable_evaluation_is_no_data(spec, prometheus, tmp_path, evaluation_text, why):
    path = tmp_path / "evaluation.json"
    if evaluation_text is not None:
        path.write_text(evaluation_text)
    check = with_params(spec.audits.monthly.check("confidence_drift"), reference_evaluation=str(path))
    finding = judge(check, context_over(prometheus, 0, 14))
    assert finding.measured is None and finding.severity is Severity.WARNING
    assert why in finding.detail


# feature_usage


def test_feature_usage_counts_the_weeks_requests_by_endpoint(spec, prometheus):
    finding = judge(spec.audits.weekly.check("feature_usage"), context_over(prometheus, 0, 7))
    generated = sum(HEALTHY.hour(index).docs_per_hour for index in range(7 * 24))
    assert finding.severity is Severity.OK
    assert finding.measured == pytest.approx(generated, rel=0.005)
    assert finding.breakdown == {"/v1/documents": finding.measured}
    assert "documents by document_type: purchase_order 50.0%" in finding.detail
    assert len(finding.series[0].points) == 7 * 24


def test_feature_usage_without_requests_is_no_data(spec, prometheus):
    finding = judge(spec.audits.weekly.check("feature_usage"), context_over(prometheus, -14, -7))
    assert finding.measured is None and finding.severity is Severity.WARNING


# incident_retrospective


@pytest.fixture
def ledger(tmp_path):
    ledger = Ledger(f"sqlite:///{tmp_path / 'ledger.db'}")
    ledger.migrate()
    yield ledger
    ledger.engine.dispose()


def record_release(ledger: Ledger, release_id: str) -> None:
    ledger.record_release(release_id, service="sap-llm", environment="production", version="2.0.0",
                          profile="production", triggered_by="alice", spec_digest="d", blue_slot="blue",
                          writer=WRITER)


def record_incidents(ledger: Ledger) -> None:
    """A release rolled back after a failed SLO window, and one that failed at a gate."""
    record_release(ledger, "rel-rolled-back")
    ledger.record_slo_window("rel-rolled-back", step="step_020", green_weight=20, verdict="failed",
                             reason="error_rate 0.04 >= 0.01", window_seconds=600, checks=[],
                             started_at=datetime.now(timezone.utc).isoformat(), writer=WRITER)
    ledger.record_rollback("rel-rolled-back", cause="step_020: error_rate", blue_weight_after=100, green_removed=True,
                           blue_healthy=True, detail="10 of 10 probes answered by blue",
                           started_at=datetime.now(timezone.utc).isoformat(), writer=WRITER)
    ledger.record_event("rel-rolled-back", "rolled_back", "rolled back to blue", WRITER)
    record_release(ledger, "rel-failed")
    ledger.record_gate("rel-failed", gate="tls_version", phase="security", kind="tls_endpoint",
                       evidence=Evidence(Verdict.FAILED, "TLSv1.2", "TLS 1.3"), writer=WRITER)
    ledger.record_event("rel-failed", "failed", "gate tls_version failed", WRITER)


def last_week(prometheus, ledger: Ledger) -> AuditContext:
    """The seven days before now (a minute ahead, past the ledger's records): the history's last days."""
    provider, _ = prometheus
    end = datetime.now(timezone.utc) + timedelta(minutes=1)
    return AuditContext(service="sap-llm", period_start=end - timedelta(days=7), period_end=end,
                        step=timedelta(hours=1), metrics=provider, ledger=ledger)


def test_a_quiet_week_has_no_incident(spec, prometheus, ledger):
    finding = judge(spec.audits.weekly.check("incident_retrospective"), context_over(prometheus, 0, 7, ledger=ledger))
    assert (finding.measured, finding.severity) == (0, Severity.OK)


def test_each_incident_of_the_week_is_listed_with_its_timeline(spec, prometheus, ledger):
    record_incidents(ledger)
    finding = judge(spec.audits.weekly.check("incident_retrospective"), last_week(prometheus, ledger))
    assert finding.measured == 3 and finding.severity is Severity.WARNING
    alert_start = history_start(DAYS) + timedelta(days=CRITICAL_ALERT.day, hours=CRITICAL_ALERT.start_hour)
    assert f"alert SapLlmHighErrorRate (colour=blue, job=sap-llm): firing from {alert_start:%Y-%m-%d %H:%M} UTC" \
           in finding.detail
    # counted at the check's 1-minute resolution: the history ends the alert with a NaN sample, as a staleness
    # marker would, so the last minute it was seen firing is the one before its end
    last_minute = alert_start + timedelta(minutes=CRITICAL_ALERT.minutes - 1)
    assert f"last seen firing {last_minute:%Y-%m-%d %H:%M} UTC ({CRITICAL_ALERT.minutes:.0f} min)" in finding.detail
    assert "SapLlmGpuHot" not in finding.detail
    rolled_back = next(part for part in finding.detail.split("; ") if part.startswith("release rel-rolled-back"))
    assert re.fullmatch(r"release rel-rolled-back \(rolled_back\): started .+ UTC, failure detected .+ UTC \(SLO "
                        r"window step_020 failed: error_rate 0\.04 >= 0\.01\), rolled back .+ UTC \(rollback "
                        r"started .+ UTC\), verified: blue serves all traffic and is healthy, ended .+ UTC",
                        rolled_back), rolled_back
    assert "release rel-failed (failed): started" in finding.detail
    assert "failure detected" in finding.detail and "(gate tls_version failed), no rollback" in finding.detail


def test_incidents_over_a_period_prometheus_never_watched_are_no_data(spec, prometheus, ledger):
    finding = judge(spec.audits.weekly.check("incident_retrospective"),
                    context_over(prometheus, -14, -7, ledger=ledger))
    assert finding.measured is None and finding.severity is Severity.CRITICAL
    assert "whether alerts fired cannot be told" in finding.detail


def test_incidents_without_a_ledger_are_no_data(spec, prometheus):
    finding = judge(spec.audits.weekly.check("incident_retrospective"), context_over(prometheus, 0, 7))
    assert finding.measured is None and finding.severity is Severity.CRITICAL
    assert "no release ledger" in finding.detail


def test_one_bad_day_in_a_flat_week_does_not_tilt_the_forecast_line():
    from sap_llm_release.audits.forecast import fit_line

    end_s = 7 * 86400.0
    points = [(hour * 3600.0, 0.30 if 4 * 24 <= hour < 5 * 24 else 0.70) for hour in range(1, 7 * 24 + 1)]
    fit = fit_line(points, end_s)
    assert fit.slope_per_day == pytest.approx(0, abs=1e-9) and fit.intercept == pytest.approx(0.70)
    assert fit.residual_se > 0.1  # the bad day still shows, as the fit's error
