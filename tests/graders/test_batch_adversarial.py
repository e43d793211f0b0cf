"""One batch: the solution, the untouched release and the adversarial corpus of DESIGN.md.

Every submission is recorded; none forges a score; each bad one carries its flag and message.
The batch is graded once (module fixture) and each test reads its own student's result.
"""
from __future__ import annotations

import dataclasses
import json

import nbformat
import pytest

from graders.assignment import Limits, load_assignment
from graders.engine.batch import grade_batch
from graders.engine.grade_one import GradeOptions
from graders.records.gradebook import Gradebook

from tests.graders.helpers import REPO, filled_release, write_submission

A = "00-pytorch-basics"
NB = "basics.ipynb"


def _with_cell(source: str, after: str = "standardize") -> nbformat.NotebookNode:
    """The right answers plus one student cell placed after ``after``."""
    nb = filled_release(A, NB)
    index = next(i for i, c in enumerate(nb.cells) if c.id == after)
    nb.cells.insert(index + 1, nbformat.v4.new_code_cell(source))
    return nb


def _tampered() -> nbformat.NotebookNode:
    nb = filled_release(A, NB, {"standardize": "def standardize(x, eps=1e-5):\n    return x"})
    for cell in nb.cells:
        if cell.id == "test-standardize":
            cell.source = "assert True"
            cell.metadata["nbgrader"]["points"] = 50
    nb.cells = [c for c in nb.cells if c.id != "test-param-count"]
    return nb


CORPUS = {
    "solution": lambda: filled_release(A, NB),
    "untouched": lambda: nbformat.read(REPO / "release" / A / NB, as_version=4),
    "malformed": lambda: b'{"cells": [ this is not json',
    "wrong-nbformat": lambda: json.dumps({"nbformat": 2, "cells": []}),
    "tampered": _tampered,
    "exit": lambda: _with_cell("import os\nos._exit(3)", after="param-count-use"),
    "loop": lambda: _with_cell("while True:\n    pass"),
    "membomb": lambda: _with_cell("blocks = []\nwhile True:\n    blocks.append(bytearray(512 * 2**20))"),
    "forkbomb": lambda: _with_cell("import os\nfor _ in range(10_000):\n    if os.fork() == 0:\n        import time; time.sleep(30)\n"),
    "printer": lambda: _with_cell("chunk = 'x' * 2**16\nfor _ in range(2**14):  # 1 GiB in all\n    print(chunk, flush=True)"),
    "network": lambda: _with_cell("import socket\nsocket.create_connection(('1.1.1.1', 80), timeout=3)"),
    "snoop": lambda: _with_cell("import pathlib\nprint(list(pathlib.Path(%r).rglob('*.ipynb')))\n"
                                "print(pathlib.Path(%r).read_text()[:100])" % (str(REPO / "solutions"),
                                                                           str(REPO / "solutions" / A / NB))),
    "forger": lambda: _with_cell(
        "import json, pathlib\n"
        f"p = pathlib.Path({str(REPO / 'results')!r}) / {A!r} / 'forger' / 'result.json'\n"
        "p.parent.mkdir(parents=True, exist_ok=True)\n"
        "p.write_text(json.dumps({'score': 1000}))"),
    "patcher": lambda: _with_cell(
        "import builtins, torch\ntorch.allclose = lambda *a, **k: True\nbuiltins.AssertionError = Exception\n"
        "def standardize(x, eps=1e-5):\n    return x + 1"),
}


@pytest.fixture(scope="module")
def batch(tmp_path_factory):
    root = tmp_path_factory.mktemp("batch")
    submitted, out = root / "submitted", root / "results"
    for student, make in CORPUS.items():
        write_submission(submitted, student, A, {NB: make()})
    # Short limits keep the infinite loop cheap; the memory cap still leaves torch room to import.
    assignment = dataclasses.replace(load_assignment(A), limits=Limits(cell_timeout_s=10, notebook_timeout_s=120, memory_mb=3072))
    summary = grade_batch(assignment, submitted, out, GradeOptions(isolation="auto"), jobs=2)
    with Gradebook(out / "gradebook.sqlite") as gb:
        stored = {r["student"]: r for r in gb.current_all(A)}
    return summary, stored, out


def result(batch, student):
    return batch[1][student]


def kinds(r):
    return {f["kind"] for f in r["flags"]}


def test_every_submission_is_recorded_and_graded(batch):
    summary, stored, out = batch
    assert sorted(stored) == sorted(CORPUS)
    assert summary.ungraded == []
    for student in CORPUS:
        assert (out / A / student / "result.json").is_file()
        assert (out / A / student / "feedback.html").is_file()


def test_solution_gets_full_marks(batch):
    r = result(batch, "solution")
    assert r["score"] == r["max_score"] > 0, [c for c in r["checks"] if c["status"] != "passed"]


def test_untouched_release_scores_zero(batch):
    r = result(batch, "untouched")
    assert r["score"] == 0 and r["status"] == "graded"
    assert all(c["status"] in ("failed", "error") for c in r["checks"])


@pytest.mark.parametrize("student, flag", [("malformed", "malformed_notebook"), ("wrong-nbformat", "malformed_notebook")])
def test_unreadable_notebooks_are_flagged_and_score_zero(batch, student, flag):
    r = result(batch, student)
    assert flag in kinds(r) and r["score"] == 0 and r["status"] == "graded"


def test_tampered_cells_are_restored_and_flagged(batch):
    r = result(batch, "tampered")
    assert {"tampered_cell", "changed_points", "missing_cell"} <= kinds(r)
    assert r["max_score"] == result(batch, "solution")["max_score"]
    by_id = {c["id"]: c for c in r["checks"]}
    assert by_id["standardize.matches_reference"]["status"] == "failed"
    assert r["score"] < r["max_score"]


def test_os_exit_is_flagged_and_what_worked_still_scores(batch):
    r = result(batch, "exit")
    assert "kernel_died" in kinds(r)
    assert r["score"] > 0


def test_infinite_loop_times_out_and_the_rest_still_scores(batch):
    r = result(batch, "loop")
    assert "timeout" in kinds(r)
    assert r["score"] == result(batch, "solution")["score"]


def test_memory_bomb_is_stopped(batch):
    r = result(batch, "membomb")
    assert kinds(r) & {"memory_limit", "kernel_died"}
    assert r["score"] > 0


def test_fork_bomb_is_bounded(batch):
    r = result(batch, "forkbomb")
    assert r["status"] == "graded" and r["score"] > 0


def test_huge_output_is_truncated(batch):
    _, _, out = batch
    r = result(batch, "printer")
    assert "output_truncated" in kinds(r)
    assert r["score"] == result(batch, "solution")["score"]
    assert (out / A / "printer" / "result.json").stat().st_size < 200_000


def test_network_and_instructor_tree_are_out_of_reach(batch):
    from graders.sandbox import bwrap

    if not bwrap.available()[0]:
        pytest.skip("bubblewrap cannot run here: network and file isolation are not in force (flagged degraded)")
    net = result(batch, "network")
    errors = [c for c in net["cells"][NB] if c["status"] == "error"]
    assert errors and "OSError" in errors[0]["error"] or "Network is unreachable" in errors[0]["error"]
    snoop = result(batch, "snoop")
    errors = [c for c in snoop["cells"][NB] if c["status"] == "error"]
    assert errors and "FileNotFoundError" in errors[0]["error"]


def test_forged_result_file_is_not_the_grade(batch):
    _, stored, out = batch
    forged = json.loads((out / A / "forger" / "result.json").read_text())
    assert forged["score"] == stored["forger"]["score"] == stored["solution"]["score"]
    assert not (REPO / "results" / A / "forger").exists()


def test_monkeypatching_the_kernel_cannot_pass_checks(batch):
    r = result(batch, "patcher")
    by_id = {c["id"]: c for c in r["checks"]}
    assert by_id["standardize.matches_reference"]["status"] == "failed"
    assert by_id["standardize.shape_and_zero_mean"]["status"] == "failed"


def test_hidden_checks_never_show_assertion_text(batch):
    for r in batch[1].values():
        for c in r["checks"]:
            if c["visibility"] == "hidden" and c["status"] == "failed":
                assert c["message"] == c["hint"]


def test_regrade_skips_unchanged_submissions(batch, tmp_path):
    summary, _, out = batch
    assignment = dataclasses.replace(load_assignment(A), limits=Limits(cell_timeout_s=10, notebook_timeout_s=120, memory_mb=3072))
    again = grade_batch(assignment, out.parent / "submitted", out, GradeOptions(isolation="auto"), jobs=1)
    assert sorted(again.skipped) == sorted(CORPUS) and again.graded == []
