"""Grade the solution, the untouched release and the mutants in one batch; judge the kill matrix."""
from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import nbformat

from graders import paths
from graders.engine.batch import grade_batch
from graders.engine.grade_one import GradeOptions
from graders.errors import CourseError
from graders.mutants.spec import Mutant
from graders.sandbox.scratch import scratch_dir

FAILING = ("failed", "error")


def apply_edits(assignment, mutant: Mutant) -> dict[str, nbformat.NotebookNode]:
    """The mutant's notebooks: the filled release with its edits (a dropped notebook is absent)."""
    from graders.release.fill import filled_release  # jupytext: needed here only

    overrides: dict[str, dict[str, str]] = {}
    dropped = {e.notebook for e in mutant.edits if e.drop}
    for edit in mutant.edits:
        if edit.drop:
            continue
        cells = overrides.setdefault(edit.notebook, {})
        if edit.source is not None:
            cells[edit.cell] = edit.source
            continue
        current = cells.get(edit.cell)
        if current is None:
            nb = filled_release(assignment.name, edit.notebook)
            current = next((c.source for c in nb.cells if c.id == edit.cell), None)
            if current is None:
                raise CourseError(f"{mutant.path}: no cell {edit.cell!r} in {edit.notebook}")
        if edit.old not in current:
            raise CourseError(f"{mutant.path}: the text {edit.old!r} is not in cell {edit.cell!r} of {edit.notebook} "
                              "(did the solution change?)")
        cells[edit.cell] = current.replace(edit.old, edit.new)
    return {nb: filled_release(assignment.name, nb, overrides.get(nb)) for nb in assignment.notebooks if nb not in dropped}


def write_submissions(assignment, mutants: list[Mutant], submitted: Path) -> None:
    from graders.release.fill import filled_release  # jupytext: needed here only

    def write(student: str, notebooks: dict) -> None:
        folder = submitted / student / assignment.name
        folder.mkdir(parents=True, exist_ok=True)
        for name, nb in notebooks.items():
            nbformat.write(nb, folder / name)

    write("solution", {nb: filled_release(assignment.name, nb) for nb in assignment.notebooks})
    write("untouched", {nb: nbformat.read(paths.RELEASE / assignment.name / nb, as_version=4) for nb in assignment.notebooks})
    for mutant in mutants:
        write(mutant.name, apply_edits(assignment, mutant))


@dataclass
class Verdict:
    student: str
    ok: bool
    problems: list[str] = field(default_factory=list)


@dataclass
class MutantReport:
    assignment: str
    checks: list[str]  # check ids in notebook order
    results: dict[str, dict]  # student -> result.json
    mutants: list[Mutant]
    verdicts: list[Verdict]
    unkilled: list[str]  # checks no mutant killed (judged on full runs only)
    full_run: bool
    seconds: float = 0.0

    @property
    def ok(self) -> bool:
        return all(v.ok for v in self.verdicts) and not (self.full_run and self.unkilled)

    def failing(self, student: str) -> set[str]:
        r = self.results.get(student) or {}
        return {c["id"] for c in r.get("checks", []) if c["status"] in FAILING}


def judge(assignment: str, results: dict[str, dict], mutants: list[Mutant], full_run: bool) -> MutantReport:
    solution = results.get("solution")
    checks = [c["id"] for c in (solution or {}).get("checks", [])]
    report = MutantReport(assignment, checks, results, mutants, [], [], full_run)
    verdicts = report.verdicts

    def graded(student: str) -> dict | None:
        r = results.get(student)
        if r is None or r["status"] != "graded":
            verdicts.append(Verdict(student, False, [f"not graded: {(r or {}).get('reason', 'no result')}"]))
            return None
        return r

    if (r := graded("solution")) is not None:
        lost = sorted(report.failing("solution"))
        full = r["score"] == r["max_score"] - r["pending_points"]
        verdicts.append(Verdict("solution", not lost and full,
                                [f"the solution fails {', '.join(lost)}"] if lost else
                                ([] if full else [f"the solution scores {r['score']} of {r['max_score']}"])))
    if (r := graded("untouched")) is not None:
        verdicts.append(Verdict("untouched", r["score"] == 0, [] if r["score"] == 0 else [f"the untouched release scores {r['score']}"]))
    killed: set[str] = set()
    for mutant in mutants:
        if (r := graded(mutant.name)) is None:
            continue
        failed = report.failing(mutant.name)
        killed |= failed
        problems = []
        unknown = sorted(mutant.fails - set(checks))
        if unknown and checks:
            problems.append(f"names checks the suite does not have: {', '.join(unknown)}")
        if survived := sorted(mutant.fails - failed - set(unknown)):
            problems.append(f"survives {', '.join(survived)}")
        if collateral := sorted(failed - mutant.fails):
            problems.append(f"also fails {', '.join(collateral)}")
        if missing := sorted(mutant.flags - {f["kind"] for f in r["flags"]}):
            problems.append(f"does not raise flag {', '.join(missing)}")
        if mutant.correct and r["score"] != r["max_score"] - r["pending_points"]:
            problems.append(f"a correct answer scores {r['score']} of {r['max_score'] - r['pending_points']}")
        if mutant.score is not None and abs(r["score"] - mutant.score) > 1e-9:
            problems.append(f"scores {r['score']}, expected {mutant.score}")
        for c in r["checks"]:
            if c["id"] in failed and not (c.get("message") or "").strip():
                problems.append(f"{c['id']} failed without a message")
        verdicts.append(Verdict(mutant.name, not problems, problems))
    pending = {c["id"] for c in (solution or {}).get("checks", []) if c["status"] == "pending"}
    report.unkilled = [c for c in checks if c not in killed and c not in pending]
    return report


def run_mutants(assignment, mutants: list[Mutant], *, jobs: int = 2, full_run: bool = True,
                options: GradeOptions | None = None, workdir: Path | None = None, progress=None) -> MutantReport:
    """Grade everything in a scratch folder (removed afterwards unless ``workdir`` is given)."""
    import time

    start = time.perf_counter()
    with scratch_dir(f"mutants-{assignment.name}") as tmp:
        root = Path(workdir or tmp)
        submitted, out = root / "submitted", root / "results"
        write_submissions(assignment, mutants, submitted)
        summary = grade_batch(assignment, submitted, out, options or GradeOptions(), jobs=jobs, force=True,
                              progress=progress)
    results = {r["student"]: r for r in summary.graded + summary.ungraded}
    report = judge(assignment.name, results, mutants, full_run)
    report.seconds = time.perf_counter() - start
    return report
