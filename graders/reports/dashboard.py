"""``course report``: a static class dashboard that opens from disk, with no server.

    results/<a>/report/index.html      summary, plots, flags, one row per student
    results/<a>/report/scores.png      score distribution (graded submissions only)
    results/<a>/report/checks.png      pass rate of every check
    results/<a>/report/resources.png   wall time and peak memory per submission

Grades are the effective ones (graders.records.effective): TA overrides and late penalty
applied. Each student's feedback is re-written from the same effective result, so the page and
the feedback it links to agree; links are relative, so the folder can be copied or zipped.
"""
from __future__ import annotations

import os
import statistics
from pathlib import Path

import jinja2
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure

from graders.exports import effective_results
from graders.records.result import GRADED, write_text_atomic
from graders.reports.feedback import write_feedback
from graders.reports.labels import LABELS

_env = jinja2.Environment(loader=jinja2.PackageLoader("graders.reports", "templates"),
                          autoescape=jinja2.select_autoescape(["html.j2"]))
PLOTS = ("scores.png", "checks.png", "resources.png")


def _save(fig: Figure, path: Path) -> None:
    FigureCanvasAgg(fig)  # Agg without pyplot: no display, no global figure state
    tmp = path.with_suffix(".tmp.png")
    fig.savefig(tmp, dpi=110, bbox_inches="tight")
    os.replace(tmp, path)


def plot_scores(results: list[dict], path: Path) -> None:
    graded = [r["score"] for r in results if r["status"] == GRADED]
    top = max([r["max_score"] for r in results if r["status"] == GRADED] or [1])
    fig = Figure(figsize=(6, 3.2))
    ax = fig.add_subplot()
    ax.hist(graded, bins=min(20, max(5, len(graded))), range=(0, top), color="#3b6ea5", edgecolor="white")
    ax.set_xlabel(f"score (of {top:g})")
    ax.set_ylabel("submissions")
    ax.set_title(f"{len(graded)} graded, {len(results) - len(graded)} ungraded")
    _save(fig, path)


def check_stats(results: list[dict]) -> list[dict]:
    """Per check, over graded submissions: passed / failed / error / pending counts and pass rate."""
    stats: dict[str, dict] = {}
    for r in results:
        if r["status"] != GRADED:
            continue
        for c in r["checks"]:
            s = stats.setdefault(c["id"], {"id": c["id"], "title": c["title"], "visibility": c["visibility"],
                                           "passed": 0, "failed": 0, "error": 0, "pending": 0})
            s[c["status"]] += 1
    for s in stats.values():
        ran = s["passed"] + s["failed"] + s["error"]
        s["rate"] = s["passed"] / ran if ran else None
    return list(stats.values())


def plot_checks(stats: list[dict], path: Path) -> None:
    fig = Figure(figsize=(6, 0.5 + 0.35 * max(1, len(stats))))
    ax = fig.add_subplot()
    names = [s["id"] for s in stats][::-1]
    rates = [100 * (s["rate"] or 0) for s in stats][::-1]
    ax.barh(names, rates, color=["#999" if s["rate"] is None else "#2e8540" for s in stats][::-1])
    ax.set_xlim(0, 100)
    ax.set_xlabel("pass rate (%) of graded submissions; grey: pending only")
    _save(fig, path)


def plot_resources(results: list[dict], path: Path) -> None:
    rows = [r for r in results if r.get("duration_s") is not None]
    fig = Figure(figsize=(6, 3.2))
    ax = fig.add_subplot()
    for status, color in ((GRADED, "#3b6ea5"), ("ungraded", "#c0392b")):
        pts = [(r["duration_s"], r.get("peak_memory_mb") or 0) for r in rows if r["status"] == status]
        if pts:
            ax.scatter(*zip(*pts), label=status, color=color, alpha=0.8)
    ax.set_xlabel("wall time (s)")
    ax.set_ylabel("peak memory (MB)")
    if rows:
        ax.legend(loc="best")
    _save(fig, path)


def flag_rows(results: list[dict]) -> list[dict]:
    """Every flag, plus the states a TA must see: ungraded, late, an override of a vanished check."""
    rows = []
    for r in results:
        if r["status"] != GRADED:
            rows.append({"student": r["student"], "kind": "ungraded", "detail": r.get("reason") or "", "where": ""})
        for f in r.get("flags", []):
            where = " / ".join(x for x in (f.get("notebook"), f.get("cell")) if x)
            rows.append({"student": r["student"], "kind": f["kind"], "detail": f.get("detail", ""), "where": where})
        late = r.get("late") or {}
        if late.get("days_late"):
            rows.append({"student": r["student"], "kind": "late", "where": "",
                         "detail": f"{late['days_late']} day(s) after {late['due']}: -{r['late_deduction']:g}"})
        for check in r.get("orphan_overrides", []):
            rows.append({"student": r["student"], "kind": "orphan_override", "where": "",
                         "detail": f"override of {check}, which the current grade no longer has"})
    return rows


def build_dashboard(assignment: str, results_dir: Path, out: Path | None = None, lang: str = "zh") -> Path:
    """Write the dashboard and return index.html. Refuses (CourseError) a missing gradebook."""
    results_dir = Path(results_dir)
    results = effective_results(assignment, results_dir)
    out = Path(out) if out else results_dir / assignment / "report"
    out.mkdir(parents=True, exist_ok=True)
    stats = check_stats(results)
    plot_scores(results, out / PLOTS[0])
    plot_checks(stats, out / PLOTS[1])
    plot_resources(results, out / PLOTS[2])
    students = []
    for r in results:
        folder = results_dir / assignment / r["student"]
        write_feedback(r, folder, lang)
        students.append({"r": r, "href": Path(os.path.relpath(folder / "feedback.html", out)).as_posix(),
                         "flags": len(r.get("flags", []))})
    graded = [r["score"] for r in results if r["status"] == GRADED]
    summary = {"students": len(results), "graded": len(graded), "ungraded": len(results) - len(graded),
               "mean": statistics.fmean(graded) if graded else None,
               "median": statistics.median(graded) if graded else None,
               "max_score": max((r["max_score"] for r in results), default=0)}
    html = _env.get_template("dashboard.html.j2").render(
        assignment=assignment, L=LABELS[lang], lang=lang, summary=summary, stats=stats, students=students,
        flags=flag_rows(results), plots=PLOTS, fmt=lambda x: "–" if x is None else f"{x:.4g}")
    index = out / "index.html"
    write_text_atomic(index, html)
    return index
