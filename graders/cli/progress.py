"""A progress bar and the closing summary table of a grading batch (rich, on stderr/stdout)."""
from __future__ import annotations

from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table


class BatchProgress:
    def __init__(self, title: str):
        self.console = Console(stderr=True)
        self.title = title
        self._progress: Progress | None = None
        self._task = None

    def start(self, total: int, skipped: int) -> None:
        if skipped:
            self.console.print(f"{skipped} submission(s) unchanged since their last grade: skipped (--force re-grades)")
        self._progress = Progress(TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(),
                                  TimeElapsedColumn(), console=self.console, transient=False)
        self._progress.start()
        self._task = self._progress.add_task(self.title, total=total)

    def advance(self, result: dict) -> None:
        if self._progress is not None:
            self._progress.update(self._task, advance=1, description=f"{self.title}: {result['student']}")

    def stop(self) -> None:
        if self._progress is not None:
            self._progress.stop()
            self._progress = None


def summary_table(results: list[dict]) -> Table:
    table = Table(title="grades")
    for col in ("student", "score", "pending", "flags", "status"):
        table.add_column(col)
    for r in sorted(results, key=lambda r: r["student"]):
        score = "–" if r["score"] is None else f"{r['score']:g} / {r['max_score']:g}"
        flags = ", ".join(sorted({f["kind"] for f in r["flags"]})) or "–"
        table.add_row(r["student"], score, f"{r['pending_points']:g}", flags,
                      r["status"] if r["status"] != "ungraded" else f"ungraded: {r['reason']}")
    return table


def summary_line(graded: int, skipped: int, ungraded: int, elapsed_s: float, jobs: int, where) -> str:
    """The batch in one line: counts, time, and the rate in submissions per minute (of those
    graded or found ungraded in this run; skipped ones cost nothing and do not count)."""
    done = graded + ungraded
    return (f"graded {graded}, skipped {skipped} unchanged, ungraded {ungraded} in {elapsed_s:.0f} s "
            f"({60 * done / max(elapsed_s, 1e-9):.1f} submissions/min, --jobs {jobs}); results in {where}")
