import copy

import pytest
import yaml

from sap_llm_release.audits.model import Severity
from sap_llm_release.spec import SpecError, load_spec, parse_spec
from tests.support.runs import SPEC_FILE

RAW = yaml.load(SPEC_FILE.read_text(), Loader=yaml.CSafeLoader)  # libyaml: read at every worker's collection


def with_audits(change) -> dict:
    data = copy.deepcopy(RAW)
    change(data["audits"])
    return data


def test_the_spec_defines_the_three_audits():
    audits = load_spec(SPEC_FILE).audits.named()
    assert list(audits) == ["daily", "weekly", "monthly"]
    assert audits["daily"].check("error_rate").kind == "slo_series"


@pytest.mark.parametrize("change, message", [
    (lambda a: a["daily"]["checks"][0].update(kind="slo_serie"), r"audits\.daily\.checks\.0\.kind.*unknown audit "
                                                                  r"check kind 'slo_serie'"),
    (lambda a: a["daily"].update(schedule="every day"), r"audits\.daily\.schedule.*not a cron expression"),
    (lambda a: a["daily"]["checks"][0].pop("warning"), r"audits\.daily\.checks\.0.*needs a warning bound"),
    (lambda a: a["daily"]["checks"][0].update(critical={"op": "<", "value": 0.001}),
     r"critical: < 0\.001 must lie further out than the warning bound < 0\.01"),
    (lambda a: a["daily"]["checks"][0].update(critical={"op": ">", "value": 0.5}), r"keep the warning bound's"),
    (lambda a: a["daily"]["checks"][0].update(params={"query": "rate(x[$window])"}), r"params\.query.*\['window'\]"),
    (lambda a: a["daily"]["checks"][0]["params"].update(query="up"), r"give either query or slo"),
    (lambda a: a["daily"]["checks"][0].update(params={"slo": "availabilty"}),
     r"audits\.daily\.checks\.0\.params\.slo: no SLO 'availabilty' in service_levels \(availability, latency, "
     r"throughput\)"),
    (lambda a: a["daily"].update(step="2d"), r"audits\.daily.*step: 2 days.*longer than the period"),
    (lambda a: a.update(hourly=a["daily"]), r"audits\.hourly.*Extra inputs"),
    (lambda a: a["daily"].update(checks=[a["daily"]["checks"][0]] * 2), r"duplicate check names \['error_rate'\]"),
    (lambda a: a["daily"]["checks"].append({"name": "tls", "kind": "release_check", "params": {"kind": "tls"}}),
     r"unknown release check kind 'tls'"),
])
def test_a_bad_audit_is_refused_naming_the_field(change, message):
    with pytest.raises(SpecError, match=message):
        parse_spec(with_audits(change))


@pytest.mark.parametrize("measured, severity", [
    (0.002, Severity.OK), (0.01, Severity.WARNING), (0.03, Severity.WARNING), (0.05, Severity.CRITICAL),
    (None, Severity.CRITICAL),
])
def test_an_upper_bound_judges_warning_then_critical_and_no_data_is_never_ok(measured, severity):
    check = load_spec(SPEC_FILE).audits.daily.check("error_rate")
    assert check.judge(measured) is severity


def test_a_lower_bound_without_critical_is_at_worst_a_warning():
    check = load_spec(SPEC_FILE).audits.daily.check("gpu_utilisation_floor")
    assert (check.judge(0.7), check.judge(0.1)) == (Severity.OK, Severity.WARNING)
