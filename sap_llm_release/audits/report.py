"""An audit run as people read it: a self-contained HTML report with a plot per finding's series and per breakdown,
and the Slack summary that links to it.

matplotlib is imported only inside the plotting functions, so importing this module (as the DAG files do) stays
cheap. The plots draw on ``matplotlib.figure.Figure`` objects, never pyplot: no backend to switch, no figure kept
in a global registry between runs."""

from __future__ import annotations

import itertools
import re
from dataclasses import dataclass
from datetime import datetime, time, timedelta, timezone
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import jinja2

from sap_llm_release.audits.model import AuditRun, Finding, Series, Severity
from sap_llm_release.audits.trend import Trend
from sap_llm_release.notify.slack import escape, link

FIGURE_WIDTH_PX, FIGURE_HEIGHT_PX, FIGURE_DPI = 900, 300, 100
SEVERITY_COLOURS = {"ok": "#2e7d32", "warning": "#b26a00", "critical": "#c62828"}
BOUND_COLOURS = {"warning": "#e69f00", "critical": "#d62728"}
OTHER_BOUND_COLOUR = "#555555"
# blues, greens and purples only: red and amber mean a bound
SERIES_COLOURS = ("#1f77b4", "#2ca02c", "#9467bd", "#17becf", "#8c564b")
SUMMARY_MAX_FINDINGS = 10
SUMMARY_MAX_DETAIL = 200

_TEMPLATES = jinja2.Environment(
    loader=jinja2.FileSystemLoader(Path(__file__).parent / "templates"),
    autoescape=True,
    undefined=jinja2.StrictUndefined,
    trim_blocks=True,
    lstrip_blocks=True,
)


@dataclass(frozen=True)
class _Row:
    """One finding as the report's table and plot sections show it."""

    finding: Finding
    anchor: str
    measured: str
    evidence_href: str
    series_plot: str
    breakdown_plot: str
    breakdown_total: str
    trend: str


def render_report(run: AuditRun, out_dir: Path, *, title: str | None = None,
                  trends: dict[str, Trend] | None = None) -> Path:
    """Write ``out_dir/index.html`` and its PNG plots (critical findings first), each finding beside its check's
    earlier runs when ``trends`` has them; return the HTML's path."""
    out_dir.mkdir(parents=True, exist_ok=True)
    used_names: set[str] = set()
    rows = [_render_finding(finding, run, out_dir, used_names, (trends or {}).get(finding.check))
            for finding in ordered_findings(run)]
    html = _TEMPLATES.get_template("report.html.j2").render(
        title=title or f"{run.audit} audit {period_label(run)}",
        run=run,
        period=f"{_utc(run.period_start):%Y-%m-%d %H:%M} – {_utc(run.period_end):%Y-%m-%d %H:%M} UTC",
        counts=run.counts(),
        rows=rows,
        colours=SEVERITY_COLOURS,
        width=FIGURE_WIDTH_PX,
        height=FIGURE_HEIGHT_PX,
    )
    index = out_dir / "index.html"
    index.write_text(html, encoding="utf-8")
    return index


def summary_text(run: AuditRun, report_url: str) -> str:
    """The Slack message of a run: its severity and counts, each critical and warning finding (at most
    ``SUMMARY_MAX_FINDINGS``), and the link to the report."""
    counts = run.counts()
    header = (f"*{escape(run.audit)} audit {period_label(run)}: {run.severity.value}* — "
              + ", ".join(f"{counts[severity.value]} {severity.value}" for severity in reversed(Severity)))
    flagged = [finding for finding in ordered_findings(run) if finding.severity is not Severity.OK]
    lines = [header] + [_summary_line(finding) for finding in flagged[:SUMMARY_MAX_FINDINGS]]
    if len(flagged) > SUMMARY_MAX_FINDINGS:
        lines.append(f"• and {len(flagged) - SUMMARY_MAX_FINDINGS} more")
    lines.append(link(report_url, "report"))
    return "\n".join(lines)


def ordered_findings(run: AuditRun) -> list[Finding]:
    """The run's findings, critical first, then warning, then ok (the run's order within each)."""
    return sorted(run.findings, key=lambda finding: -finding.severity.rank)


def period_label(run: AuditRun) -> str:
    """The days a run covers (``2026-11-28``, ``2026-11-22 – 2026-11-28``), or its exact bounds when they are not
    midnights (UTC)."""
    start, end = _utc(run.period_start), _utc(run.period_end)
    if start.time() != time(0) or end.time() != time(0):
        return f"{start:%Y-%m-%d %H:%M} – {end:%Y-%m-%d %H:%M} UTC"
    last_day = (end - timedelta(days=1)).date()
    return f"{start.date()}" if last_day <= start.date() else f"{start.date()} – {last_day}"


def format_number(value: float) -> str:
    """A measured value, bound or part as the report prints it."""
    return f"{value:,.0f}" if abs(value) >= 1e5 else f"{value:.6g}"


def measured_text(finding: Finding) -> str:
    """What a finding measured as the report prints it: its number, its ``measured_text``, or "no data"."""
    if finding.measured is not None:
        return format_number(finding.measured)
    return finding.measured_text or "no data"


def file_stem(text: str, used: set[str]) -> str:
    """``text`` as a file name stem of ``[a-z0-9_-]`` not in ``used`` (``-2``, ``-3``… appended); added to it."""
    base = re.sub(r"[^a-z0-9_-]+", "_", text.lower()).strip("_") or "finding"
    stem = next(candidate for candidate in itertools.chain([base], (f"{base}-{n}" for n in itertools.count(2)))
                if candidate not in used)
    used.add(stem)
    return stem


def _render_finding(finding: Finding, run: AuditRun, out_dir: Path, used_names: set[str],
                    trend: Trend | None) -> _Row:
    """Plot ``finding`` into ``out_dir`` (its series, its breakdown) and return its row."""
    anchor = file_stem(finding.check, used_names)
    series_plot = breakdown_plot = ""
    if finding.series:
        series_plot = f"{anchor}.png"
        _plot_series(finding, (run.period_start, run.period_end), out_dir / series_plot)
    if finding.breakdown:
        breakdown_plot = f"{file_stem(f'{anchor}-breakdown', used_names)}.png"
        _plot_breakdown(finding, out_dir / breakdown_plot)
    return _Row(
        finding=finding,
        anchor=anchor,
        measured=measured_text(finding),
        evidence_href=finding.evidence_uri if urlsplit(finding.evidence_uri).scheme in ("http", "https") else "",
        series_plot=series_plot,
        breakdown_plot=breakdown_plot,
        breakdown_total=format_number(sum(finding.breakdown.values())),
        trend=trend.describe(finding) if trend is not None else "",
    )


def _summary_line(finding: Finding) -> str:
    day = f" ({finding.day.isoformat()})" if finding.day else ""
    measured = measured_text(finding)
    detail = " ".join(finding.detail.split())
    if len(detail) > SUMMARY_MAX_DETAIL:
        detail = detail[:SUMMARY_MAX_DETAIL - 1] + "…"
    return (f"• {finding.severity.value} {escape(finding.check)}{day}: measured {measured}, "
            f"threshold {escape(finding.threshold)}" + (f" — {escape(detail)}" if detail else ""))


def _utc(moment: datetime) -> datetime:
    """``moment`` in UTC (a naive datetime is taken as UTC already)."""
    return moment.replace(tzinfo=timezone.utc) if moment.tzinfo is None else moment.astimezone(timezone.utc)


def _plain(text: str) -> str:
    """``text`` as matplotlib shows it literally: no mathtext between ``$``, no legend entry hidden by a leading
    ``_``."""
    text = text.replace("$", r"\$")
    return "\u200b" + text if text.startswith("_") else text


def _figure():
    """A figure of the report's fixed size and its axes."""
    from matplotlib.figure import Figure

    figure = Figure(figsize=(FIGURE_WIDTH_PX / FIGURE_DPI, FIGURE_HEIGHT_PX / FIGURE_DPI), dpi=FIGURE_DPI,
                    layout="constrained")
    return figure, figure.add_subplot()


def _plot_series(finding: Finding, period: tuple[datetime, datetime], path: Path) -> None:
    """A line per series of ``finding`` over UTC time, a dashed line per bound, saved as PNG at ``path``. Series of a
    second unit (GPU utilisation beside docs/h) and their bounds go on a right-hand axis of their own."""
    import matplotlib.dates as mdates

    figure, axes = _figure()
    units = list(dict.fromkeys(series.unit for series in finding.series))
    right = axes.twinx() if len(units) > 1 else None

    def axes_of(unit: str) -> Any:
        return right if right is not None and unit != units[0] else axes

    for colour, series in zip(itertools.cycle(SERIES_COLOURS), finding.series):
        times = [datetime.fromtimestamp(epoch, tz=timezone.utc) for epoch, _ in series.points]
        axes_of(series.unit).plot(times, [value for _, value in series.points], color=colour, linewidth=1.6,
                                  marker="o" if len(times) <= 48 else None, markersize=3, label=_plain(series.name))
    for name, value, unit in _bounds(finding.series):
        axes_of(unit).axhline(value, color=BOUND_COLOURS.get(name, OTHER_BOUND_COLOUR), linestyle="--",
                              linewidth=1.5, label=_plain(f"{name} {format_number(value)} {unit}".rstrip()))
    if not any(series.points for series in finding.series):
        axes.set_xlim(_utc(period[0]), _utc(period[1]))
        axes.text(0.5, 0.5, "no data", transform=axes.transAxes, ha="center", va="center", color="#555555",
                  fontsize="large", bbox={"facecolor": "white", "edgecolor": "#aaaaaa"})
    locator = mdates.AutoDateLocator(tz=timezone.utc)
    axes.xaxis.set_major_locator(locator)
    # the ticks name the days; the offset below the axis only adds the year (by default it names the last tick's day)
    axes.xaxis.set_major_formatter(mdates.ConciseDateFormatter(
        locator, tz=timezone.utc, offset_formats=["", "%Y", "%Y", "%Y", "%Y-%b-%d", "%Y-%b-%d %H:%M"]))
    axes.set_xlabel("time (UTC)")
    axes.set_ylabel(_plain((units[0] or "value") if right is not None else _unit_label(finding.series)))
    axes.set_title(_plain(f"{finding.check}: {finding.severity.value}"),
                   color=SEVERITY_COLOURS[finding.severity.value])
    axes.grid(alpha=0.3)
    handles, labels = axes.get_legend_handles_labels()
    if right is not None:
        right.set_ylabel(_plain(units[1] or "value"))
        more_handles, more_labels = right.get_legend_handles_labels()
        handles, labels = handles + more_handles, labels + more_labels
    axes.legend(handles, labels, loc="upper left", bbox_to_anchor=(1.1 if right is not None else 1.01, 1.0),
                fontsize="small")
    figure.savefig(path, dpi=FIGURE_DPI)


def _plot_breakdown(finding: Finding, path: Path) -> None:
    """A horizontal bar per part of ``finding``'s breakdown (largest on top) with its value; the total in the
    title; saved as PNG at ``path``."""
    figure, axes = _figure()
    parts = sorted(finding.breakdown.items(), key=lambda part: part[1])
    bars = axes.barh([_plain(name) for name, _ in parts], [value for _, value in parts], color=SERIES_COLOURS[0])
    axes.bar_label(bars, labels=[format_number(value) for _, value in parts], padding=3, fontsize="small")
    axes.margins(x=0.12)
    axes.set_title(_plain(f"{finding.check}: {finding.severity.value} — total "
                          f"{format_number(sum(finding.breakdown.values()))}"),
                   color=SEVERITY_COLOURS[finding.severity.value])
    axes.grid(axis="x", alpha=0.3)
    figure.savefig(path, dpi=FIGURE_DPI)


def _bounds(series: tuple[Series, ...]) -> list[tuple[str, float, str]]:
    """Each distinct (bound name, value, unit) across ``series``, in order of appearance."""
    return list(dict.fromkeys((name, value, one.unit) for one in series for name, value in one.bounds.items()))


def _unit_label(series: tuple[Series, ...]) -> str:
    return ", ".join(dict.fromkeys(one.unit for one in series if one.unit)) or "value"
