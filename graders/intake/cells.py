"""Match submitted cells to the release by grade_id and restore what students may not change.

The release (not the instructor source) is the reference: it holds the locked and visible test
cells exactly as students received them, and no hidden test, so nothing hidden ever enters the
sandbox. Solution cells keep the student's code; locked and test cells are replaced by the
release's; cells the student added are kept where they stand; deleted ones are put back.
"""
from __future__ import annotations

import copy

import nbformat

from graders.intake import flags as F
from graders.intake.flags import Flag


def grade_id(cell) -> str | None:
    meta = cell.get("metadata", {}).get("nbgrader", {})
    gid = meta.get("grade_id") if isinstance(meta, dict) else None
    return gid if isinstance(gid, str) and gid else None


def is_student_owned(cell) -> bool:
    """Solution cells (autograded answers, written answers) belong to the student."""
    meta = cell.metadata.get("nbgrader", {})
    return bool(meta.get("solution")) and not meta.get("locked")


def _normalised(source: str) -> str:
    return "\n".join(line.rstrip() for line in source.strip().splitlines())


def _compare(student, released, notebook: str, gid: str) -> list[Flag]:
    found = []
    s_meta = student.get("metadata", {}).get("nbgrader", {})
    r_meta = released.metadata.get("nbgrader", {})
    if student.get("cell_type") != released.cell_type:
        found.append(Flag(F.CHANGED_CELL_TYPE, f"cell {gid} was changed from {released.cell_type} to "
                          f"{student.get('cell_type')}; restored", notebook, gid))
    if r_meta.get("grade") and s_meta.get("points") != r_meta.get("points"):
        found.append(Flag(F.CHANGED_POINTS, f"points of {gid} changed from {r_meta.get('points')} to "
                          f"{s_meta.get('points')}; restored", notebook, gid))
    if is_student_owned(released):
        if any(s_meta.get(k) != r_meta.get(k) for k in ("grade", "solution", "locked")):
            found.append(Flag(F.TAMPERED_CELL, f"the nbgrader metadata of {gid} was edited; restored",
                              notebook, gid))
    elif _normalised(student.get("source", "")) != _normalised(released.source):
        kind = "test" if r_meta.get("grade") else "locked"
        found.append(Flag(F.TAMPERED_CELL, f"the {kind} cell {gid} was edited; the original was restored "
                          "and run instead", notebook, gid))
    return found


def restore_cells(submitted: nbformat.NotebookNode, release: nbformat.NotebookNode,
                  notebook: str) -> tuple[nbformat.NotebookNode, list[Flag]]:
    """Return the notebook to execute and the flags that explain every change made to it."""
    released = {grade_id(c): c for c in release.cells if grade_id(c)}
    order = [grade_id(c) for c in release.cells if grade_id(c)]
    found: list[Flag] = []
    matched: dict[str, object] = {}
    plan: list[tuple[str, object]] = []  # ("release", gid) or ("extra", cell)
    for cell in submitted.cells:
        gid = grade_id(cell)
        if gid in released and gid not in matched:
            matched[gid] = cell
            plan.append(("release", gid))
            continue
        if gid in matched:
            found.append(Flag(F.DUPLICATE_CELL, f"grade_id {gid} appears more than once; the first copy is "
                              "graded, the others run as ordinary cells", notebook, gid))
            cell = copy.deepcopy(cell)
            cell.metadata.pop("nbgrader", None)
        plan.append(("extra", cell))

    out = nbformat.v4.new_notebook(metadata=copy.deepcopy(release.metadata))
    emitted: set[str] = set()

    def emit_release(gid: str) -> None:
        r_cell = copy.deepcopy(released[gid])
        student = matched.get(gid)
        if student is not None and is_student_owned(r_cell) and student.get("cell_type") == r_cell.cell_type:
            r_cell.source = student.get("source", "")
        out.cells.append(r_cell)
        emitted.add(gid)

    def emit_missing_before(gid: str) -> None:
        for earlier in order[: order.index(gid)]:
            if earlier not in emitted and earlier not in matched:
                found.append(Flag(F.MISSING_CELL, f"cell {earlier} was deleted; it was put back from the release",
                                  notebook, earlier))
                emit_release(earlier)

    for kind, item in plan:
        if kind == "release":
            emit_missing_before(item)
            found.extend(_compare(matched[item], released[item], notebook, item))
            emit_release(item)
        else:
            out.cells.append(nbformat.from_dict(item))
    for gid in order:
        if gid not in emitted:
            if gid not in matched:
                found.append(Flag(F.MISSING_CELL, f"cell {gid} was deleted; it was put back from the release",
                                  notebook, gid))
            emit_release(gid)
    return out, found


def strip_outputs(nb: nbformat.NotebookNode) -> nbformat.NotebookNode:
    """Drop outputs and counts: nothing the student's own run produced is trusted."""
    for index, cell in enumerate(nb.cells):
        if cell.cell_type == "code":
            cell.outputs = []
            cell.execution_count = None
        cell.setdefault("id", f"cell-{index}")
        cell.pop("attachments", None) if cell.cell_type == "code" else None
    return nb
