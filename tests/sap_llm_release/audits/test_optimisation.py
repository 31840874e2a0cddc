"""``right_sizing`` as the monthly audit runs it, against a real Prometheus over backfilled days: four replicas at
30 % GPU utilisation are sized down to two with the saving priced by the cost model (a warning); two replicas whose
busy hours run at 85 % are told to scale up (ok: nothing to save); no GPU series is no data."""

from __future__ import annotations

import math
import re
from datetime import timedelta

import pytest

from sap_llm_release.analysis.prometheus import PrometheusProvider
from sap_llm_release.audits.base import AuditContext
from sap_llm_release.audits.cost import HOURS_PER_MONTH
from sap_llm_release.audits.model import Severity
from sap_llm_release.audits.optimisation import quantile
from sap_llm_release.audits.runner import judge
from sap_llm_release.rehearsal.history import Healthy, backfill, history_start, prometheus_over, write_openmetrics
from sap_llm_release.spec import load_spec
from tests.sap_llm_release.conftest import find_free_port
from tests.support.runs import SPEC_FILE

CHECK = load_spec(SPEC_FILE).audits.monthly.check("right_sizing")
GPU_NODE_HOUR = CHECK.params["costs"]["gpu_node_hour"]
DAYS = 3


def judged_over(tmp_path, healthy: Healthy):
    start = history_start(DAYS)
    history = write_openmetrics(tmp_path / "history.om", start=start, days=DAYS, step_s=300, healthy=healthy)
    with prometheus_over(backfill(history, tmp_path / "tsdb"), find_free_port()) as url:
        context = AuditContext("sap-llm", start, start + timedelta(days=DAYS), timedelta(hours=1),
                               metrics=PrometheusProvider(url, timeout_s=30))
        return judge(CHECK, context)


def test_idle_replicas_are_sized_down_with_the_saving(tmp_path):
    finding = judged_over(tmp_path, Healthy(replicas=4, gpu_util_pct=30.0))
    # 4 replicas at a busy 31 % need 2 (4 x 0.31 / 0.7 = 1.8); replica-hours are counted from `up` samples, to a
    # sample's precision
    saving = 2 * HOURS_PER_MONTH * GPU_NODE_HOUR
    assert (finding.severity, finding.measured) == (Severity.WARNING, pytest.approx(saving, rel=1e-3))
    assert re.fullmatch(r"4\.00 replicas on average, GPU utilisation mean 30%, busy hours \(p95\) 31%; 2 replicas run "
                        r"the busy hours at 63% \(target 70%, floor 2\): scale down to 2, saving USD 4,3\d\d a month "
                        r"in GPU node hours", finding.detail), finding.detail
    (series,) = finding.series
    assert len(series.points) == DAYS * 24 and series.bounds["target"] == 0.70


def test_busy_replicas_are_told_to_scale_up_and_nothing_is_saved(tmp_path):
    finding = judged_over(tmp_path, Healthy(replicas=2, gpu_util_pct=85.0))
    assert (finding.severity, finding.measured) == (Severity.OK, 0)
    assert re.search(r"scale up to 3 for the busy hours, USD 2,1\d\d a month more in GPU node hours$", finding.detail)
    assert HOURS_PER_MONTH * GPU_NODE_HOUR == pytest.approx(2168.1)


def test_no_gpu_series_is_no_data(tmp_path):
    start = history_start(1)
    (tmp_path / "tsdb").mkdir()
    with prometheus_over(tmp_path / "tsdb", find_free_port()) as url:
        context = AuditContext("sap-llm", start, start + timedelta(days=1), timedelta(hours=1),
                               metrics=PrometheusProvider(url, timeout_s=30))
        finding = judge(CHECK, context)
    assert (finding.severity, finding.measured) == (Severity.CRITICAL, None)
    assert finding.detail.startswith("no data: PromQL avg(avg_over_time(DCGM_FI_DEV_GPU_UTIL[3600s])) / 100 has no "
                                     "point in the period")


@pytest.mark.parametrize(("values", "q", "expected"), [([3.0, 1.0, 2.0], 0.5, 2.0), ([1.0, 2.0], 0.95, 1.95),
                                                       ([5.0], 0.95, 5.0)])
def test_quantile_interpolates_between_ranks(values, q, expected):
    assert math.isclose(quantile(values, q), expected)
