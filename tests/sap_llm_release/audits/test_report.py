"""The audit report: the HTML page and its PNG plots as written to disk (opened with pillow, pixels inspected), and
the Slack summary."""

from __future__ import annotations

import re
import subprocess
import sys
from datetime import date, datetime, timezone
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from sap_llm_release.audits.model import AuditRun, Finding, Series, Severity
from sap_llm_release.audits.report import (
    BOUND_COLOURS,
    FIGURE_HEIGHT_PX,
    FIGURE_WIDTH_PX,
    SERIES_COLOURS,
    file_stem,
    render_report,
    summary_text,
)

ROOT = Path(__file__).resolve().parents[3]
START = datetime(2026, 11, 28, tzinfo=timezone.utc)
END = datetime(2026, 11, 29, tzinfo=timezone.utc)
HOURS = [START.timestamp() + 3600 * hour for hour in range(24)]


def error_rate() -> Finding:
    points = tuple((t, 0.05 if 12 <= hour <= 14 else 0.004) for hour, t in enumerate(HOURS))
    series = Series("error rate", points, unit="ratio", bounds={"warning": 0.01, "critical": 0.04})
    return Finding("error_rate", "slo", Severity.CRITICAL, 0.05, "< 0.01", "spike <script>alert(1)</script> & more",
                   day=date(2026, 11, 28), evidence_uri="https://ledger.example/runs/1?a=1&b=2", series=(series,))


def latency() -> Finding:
    series = Series("p95 latency", tuple((t, 1.2 + 0.01 * hour) for hour, t in enumerate(HOURS)), unit="s",
                    bounds={"warning": 2.0})
    return Finding("p95 latency", "slo", Severity.OK, 1.43, "< 2 s", "within bounds", series=(series,))


@pytest.fixture
def run() -> AuditRun:
    return AuditRun("daily", "scheduled__2026-11-29", START, END, [
        latency(),
        Finding("gpu_cost", "cost", Severity.WARNING, 1234.5, "< 1000 USD", "over budget",
                breakdown={"inference": 800.0, "validator": 300.25, "loadtest": 134.25}),
        error_rate(),
        Finding("disk_free", "capacity", Severity.WARNING, 0.12, "> 0.15", "disk filling"),
        Finding("mongo_reachable", "reachability", Severity.CRITICAL, None, "answers ping", "unreachable"),
    ])


def pixels_near(image: Image.Image, hex_colour: str, tolerance: int = 8) -> int:
    """How many pixels of ``image`` are within ``tolerance`` of ``hex_colour`` in each channel."""
    target = np.array([int(hex_colour[i:i + 2], 16) for i in (1, 3, 5)])
    rgb = np.asarray(image.convert("RGB")).astype(int)
    return int(np.all(np.abs(rgb - target) <= tolerance, axis=-1).sum())


def test_report_writes_the_page_and_a_real_png_per_plot(run, tmp_path):
    html_path = render_report(run, tmp_path / "report")
    assert html_path == tmp_path / "report" / "index.html"
    html = html_path.read_text()
    sources = re.findall(r'<img src="([^"]+)" width="(\d+)" height="(\d+)"', html)
    assert [source for source, _, _ in sources] == ["error_rate.png", "gpu_cost-breakdown.png", "p95_latency.png"]
    for source, width, height in sources:
        with Image.open(html_path.parent / source) as image:
            assert image.format == "PNG"
            assert image.size == (int(width), int(height)) == (FIGURE_WIDTH_PX, FIGURE_HEIGHT_PX)
            colours = image.convert("RGB").getcolors(maxcolors=1_000_000)
            assert len(colours) > 20
            assert max(colours)[0] < 0.97 * FIGURE_WIDTH_PX * FIGURE_HEIGHT_PX  # not (nearly) all background
    assert 'alt="gpu_cost (warning) by part, total 1234.5"' in html
    assert not re.search(r"<(link|script)\b", html) and "url(" not in html  # self-contained


def test_each_bound_is_drawn_in_its_colour(run, tmp_path):
    out_dir = tmp_path / "report"
    render_report(run, out_dir)
    with Image.open(out_dir / "error_rate.png") as image:
        assert pixels_near(image, BOUND_COLOURS["critical"]) > 100
        assert pixels_near(image, BOUND_COLOURS["warning"]) > 100
    with Image.open(out_dir / "p95_latency.png") as image:  # a warning bound only
        assert pixels_near(image, BOUND_COLOURS["warning"]) > 100
        assert pixels_near(image, BOUND_COLOURS["critical"]) == 0


def test_findings_are_listed_critical_then_warning_then_ok(run, tmp_path):
    html = render_report(run, tmp_path).read_text()
    rows = re.findall(r'<tr class="finding (\w+)">\s*<td>(?:<a href="#[^"]*">)?([^<]+)', html)
    assert rows == [("critical", "error_rate"), ("critical", "mongo_reachable"), ("warning", "gpu_cost"),
                    ("warning", "disk_free"), ("ok", "p95 latency")]


def test_no_data_is_said_and_outside_text_is_escaped(run, tmp_path):
    html = render_report(run, tmp_path).read_text()
    mongo_row = html[html.index("mongo_reachable"):html.index("</tr>", html.index("mongo_reachable"))]
    assert "no data" in mongo_row
    assert "<script>" not in html
    assert "spike &lt;script&gt;alert(1)&lt;/script&gt; &amp; more" in html
    assert '<a href="https://ledger.example/runs/1?a=1&amp;b=2">evidence</a>' in html
    assert "<h1>daily audit 2026-11-28</h1>" in html
    assert "2026-11-28 00:00 – 2026-11-29 00:00 UTC" in html


def test_checks_of_the_same_name_get_plots_of_their_own(tmp_path):
    twins = [error_rate(), error_rate()]
    html = render_report(AuditRun("daily", "r", START, END, twins), tmp_path).read_text()
    assert re.findall(r'<img src="([^"]+)"', html) == ["error_rate.png", "error_rate-2.png"]
    assert (tmp_path / "error_rate-2.png").is_file()


def test_file_stems_are_sanitised_and_unique():
    used: set[str] = set()
    assert file_stem("Error Rate (p95)/EU", used) == "error_rate_p95_eu"
    assert file_stem("error rate (p95)/eu", used) == "error_rate_p95_eu-2"
    assert file_stem("../..", used) == "finding"
    assert used == {"error_rate_p95_eu", "error_rate_p95_eu-2", "finding"}


def test_summary_lists_critical_and_warning_findings_and_links_the_report(run):
    text = summary_text(run, "https://reports.example/daily/2026-11-28/index.html")
    lines = text.split("\n")
    assert lines[0] == "*daily audit 2026-11-28: critical* — 2 critical, 2 warning, 1 ok"
    assert lines[1] == ("• critical error_rate (2026-11-28): measured 0.05, threshold &lt; 0.01 — spike "
                        "&lt;script&gt;alert(1)&lt;/script&gt; &amp; more")
    assert lines[2] == "• critical mongo_reachable: measured no data, threshold answers ping — unreachable"
    assert [line.split(" ")[1:3] for line in lines[3:5]] == [["warning", "gpu_cost:"], ["warning", "disk_free:"]]
    assert "p95 latency" not in text
    assert lines[-1] == "<https://reports.example/daily/2026-11-28/index.html|report>"
    assert len(lines) == 6


def test_summary_caps_the_list_and_percent_encodes_the_link():
    findings = [Finding(f"check_{n}", "slo", Severity.WARNING, float(n), "< 0", "x") for n in range(13)]
    run = AuditRun("weekly", "r", datetime(2026, 11, 22, tzinfo=timezone.utc), END, findings)
    lines = summary_text(run, "https://reports.example/a|b>c").split("\n")
    assert lines[0] == "*weekly audit 2026-11-22 – 2026-11-28: warning* — 0 critical, 13 warning, 0 ok"
    assert lines[1:11] == [f"• warning check_{n}: measured {n}, threshold &lt; 0 — x" for n in range(10)]
    assert lines[11:] == ["• and 3 more", "<https://reports.example/a%7Cb%3Ec|report>"]


def test_importing_the_report_module_does_not_import_matplotlib():
    code = "import sys, sap_llm_release.audits.report; print('matplotlib' in sys.modules)"
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True,
                            cwd=ROOT)
    assert result.stdout.strip() == "False"


def test_names_with_dollars_are_plotted_as_text(tmp_path):
    series = Series(r"spend $\notacommand$", ((START.timestamp(), 1.0),), unit="$", bounds={"warning": 2.0})
    finding = Finding(r"cost $\notacommand$", "cost", Severity.OK, 1.0, "< 2 $", "ok", series=(series,),
                      breakdown={r"gpu $\notacommand$": 1.0})
    html = render_report(AuditRun("daily", "r", START, END, [finding]), tmp_path).read_text()
    assert re.findall(r'<img src="([^"]+)"', html) == ["cost_notacommand.png", "cost_notacommand-breakdown.png"]


def test_a_measurement_that_is_no_number_is_said_and_survives_the_trip_between_tasks():
    from sap_llm_release.audits.report import measured_text
    from sap_llm_release.audits.runner import finding_from_dict, finding_to_dict

    forecast = Finding(check="capacity_forecast", kind="capacity_forecast", severity=Severity.OK, measured=None,
                       threshold="warning unless > 30 d", detail="stays inside the band",
                       measured_text="no crossing within 90 days")
    assert finding_from_dict(finding_to_dict(forecast)) == forecast
    assert measured_text(forecast) == "no crossing within 90 days"
    with pytest.raises(ValueError, match="no data is never ok"):
        Finding(check="x", kind="slo_series", severity=Severity.OK, measured=None, threshold="", detail="")


def test_series_of_two_units_get_an_axis_each(tmp_path):
    """A fraction beside docs/h: on one axis the fraction would be a flat line at 0; on its own axis its wave and
    its band (drawn in the warning colour) span the plot's height."""
    hours = range(48)
    start = datetime(2026, 11, 28, tzinfo=timezone.utc).timestamp()
    utilisation = tuple((start + 3600 * h, 0.7 + 0.05 * np.sin(h / 3)) for h in hours)
    throughput = tuple((start + 3600 * h, 6000 + 300 * np.sin(h / 3)) for h in hours)
    finding = Finding("capacity", "capacity_forecast", Severity.OK, 10.0, "> 7 d", "fit", series=(
        Series("gpu", utilisation, "", {"warning": 0.6}), Series("throughput", throughput, "docs/h")))
    audit = AuditRun("weekly", "r", datetime(2026, 11, 28), datetime(2026, 11, 30), [finding])
    out_dir = tmp_path / "report"
    render_report(audit, out_dir)
    with Image.open(out_dir / "capacity.png") as image:
        rgb = np.asarray(image.convert("RGB")).astype(int)[:, : int(0.6 * FIGURE_WIDTH_PX)]  # left of the legend
        blue = np.all(np.abs(rgb - [int(SERIES_COLOURS[0][i:i + 2], 16) for i in (1, 3, 5)]) <= 8, axis=-1)
        rows = np.nonzero(blue.any(axis=1))[0]
        assert rows.max() - rows.min() > 0.3 * FIGURE_HEIGHT_PX  # the fraction's wave is not flattened
        assert pixels_near(image, BOUND_COLOURS["warning"]) > 100
