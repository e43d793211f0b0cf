"""Every assignment's kill matrix on CI's representative subset (``ci = true`` mutants): the
solution scores full marks (GPU checks pending on CPU), the untouched release 0, and each mutant
fails exactly the checks it names. The full matrix runs on demand: ``course mutants A``.

One batch per assignment (graded once, two workers); each test reads one student's verdict.
"""
from __future__ import annotations

import pytest

from graders.assignment import list_assignments, load_assignment
from graders.mutants import load_mutants, run_mutants


def _cases() -> list:
    from graders.sandbox import bwrap

    cases = []
    for name in list_assignments():
        assignment = load_assignment(name)
        mutants = load_mutants(assignment, ci_only=True)
        refused = assignment.limits.requires_isolation and not bwrap.available()[0]
        marks = [pytest.mark.skip(reason=f"{name} requires bubblewrap, which cannot run here "
                                         f"({bwrap.available()[1]}); course grade refuses it")] if refused else []
        if mutants:
            cases += [pytest.param(name, s, marks=marks) for s in ("solution", "untouched", *[m.name for m in mutants])]
    return cases


_reports: dict = {}


def report_of(assignment: str):
    if assignment not in _reports:
        a = load_assignment(assignment)
        _reports[assignment] = run_mutants(a, load_mutants(a, ci_only=True), jobs=2, full_run=False)
    return _reports[assignment]


@pytest.mark.parametrize(("assignment", "student"), _cases())
def test_kill_matrix_row_is_as_declared(assignment, student):
    report = report_of(assignment)
    verdict = next((v for v in report.verdicts if v.student == student), None)
    assert verdict is not None, f"no verdict for {student}"
    assert verdict.ok, f"{assignment}/{student}: {'; '.join(verdict.problems)}"


@pytest.mark.parametrize("assignment", sorted({p.values[0] for p in _cases() if not p.marks}))
def test_only_gpu_checks_are_pending_on_cpu(assignment):
    import torch

    solution = report_of(assignment).results["solution"]
    pending = {c["id"] for c in solution["checks"] if c["status"] == "pending"}
    gpu = {c["id"] for c in solution["checks"] if c["gpu"]}
    assert pending == (set() if torch.cuda.is_available() else gpu)
    assert solution["pending_points"] == sum(c["max_points"] for c in solution["checks"] if c["id"] in pending)
