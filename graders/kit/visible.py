"""The visible part of a grader suite, cut out of its source without importing it.

A suite file mixes visible and hidden checks. The student kit may hold only the visible ones, so
each file is read as an AST and the text of what the visible checks do not reach is removed:
hidden checks (with the comment lines right above them), and the helpers, constants, fixtures
(``conftest.py`` too) and imports that only hidden checks use. What stays is the original text,
comments and layout included, so a kit suite reads like the instructor's.

Refused, with a reason: a check marker whose ``visibility`` is not a literal string, a check on
a class or method (its visibility cannot be told apart per test), and a visible check that asks
for the ``reference`` fixture (the kit has no solution to run, so its result would differ from
the grader's).
"""
from __future__ import annotations

import ast
from dataclasses import dataclass, field
from pathlib import Path

from graders.errors import CourseError

REFERENCE_FIXTURE = "reference"


@dataclass
class _Definition:
    file: Path
    node: ast.stmt
    names: set[str]  # names this statement defines
    uses: set[str]  # names it reads, fixtures it requests included
    root: bool = False  # a visible check, an autouse fixture or a pytest hook: always kept
    hidden_check: bool = False


@dataclass
class SuiteCut:
    """The result of cutting one suite: kept text per file, and what was dropped."""

    files: dict[Path, str] = field(default_factory=dict)  # relative path -> visible text (absent: nothing left)
    hidden_checks: dict[Path, list[str]] = field(default_factory=dict)  # relative path -> hidden check source
    dropped: list[str] = field(default_factory=list)  # names removed besides hidden checks


def _check_marker(node: ast.stmt) -> ast.Call | None:
    for deco in getattr(node, "decorator_list", []):
        if isinstance(deco, ast.Call) and isinstance(deco.func, ast.Attribute) and deco.func.attr == "check":
            return deco
    return None


def _visibility(marker: ast.Call, where: str) -> str:
    for kw in marker.keywords:
        if kw.arg == "visibility":
            if not (isinstance(kw.value, ast.Constant) and isinstance(kw.value.value, str)):
                raise CourseError(f"{where}: visibility must be a literal string for the student kit to filter it")
            return kw.value.value
    return "visible"


def _is_autouse_fixture(node: ast.stmt) -> bool:
    for deco in getattr(node, "decorator_list", []):
        if isinstance(deco, ast.Call) and any(k.arg == "autouse" for k in deco.keywords):
            return True
    return False


def _names_used(node: ast.AST) -> set[str]:
    used = {n.id for n in ast.walk(node) if isinstance(n, ast.Name)}
    for fn in (n for n in ast.walk(node) if isinstance(n, (ast.FunctionDef, ast.AsyncFunctionDef))):
        used |= {a.arg for a in fn.args.args + fn.args.kwonlyargs}  # fixtures requested by parameter
    return used


def _names_defined(node: ast.stmt) -> set[str]:
    if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
        return {node.name}
    if isinstance(node, (ast.Import, ast.ImportFrom)):
        return {(a.asname or a.name).split(".")[0] for a in node.names}
    if isinstance(node, (ast.Assign, ast.AnnAssign, ast.AugAssign)):
        targets = node.targets if isinstance(node, ast.Assign) else [node.target]
        return {n.id for t in targets for n in ast.walk(t) if isinstance(n, ast.Name)}
    return set()


def _definitions(path: Path, rel: Path, tree: ast.Module) -> list[_Definition]:
    out = []
    for node in tree.body:
        d = _Definition(rel, node, _names_defined(node), _names_used(node))
        marker = _check_marker(node)
        where = f"{path}:{node.lineno}"
        if isinstance(node, ast.ClassDef):
            if marker is not None or any(_check_marker(m) for m in node.body):
                raise CourseError(f"{where}: checks on classes or methods cannot be split for the student kit; "
                                  "write each check as a function")
        if marker is not None:
            visibility = _visibility(marker, where)
            d.hidden_check, d.root = visibility != "visible", visibility == "visible"
        elif isinstance(node, ast.FunctionDef) and (node.name.startswith("pytest_") or _is_autouse_fixture(node)):
            d.root = True
        elif not d.names or d.names & {"pytestmark", "__all__"} or getattr(node, "module", "") == "__future__":
            # a docstring, an `if`, a bare call, a __future__ import: module-level behaviour is kept
            d.root = True
        out.append(d)
    return out


def _reached(defs: list[_Definition]) -> set[int]:
    """Indexes of the definitions that roots reach, following names within a file and fixtures
    (defined in any file of the suite) across files."""
    fixtures = {name: i for i, d in enumerate(defs) if d.file.name == "conftest.py" for name in d.names}
    todo = [i for i, d in enumerate(defs) if d.root]
    seen = set(todo)
    while todo:
        d = defs[todo.pop()]
        for name in d.uses:
            same_file = [i for i, e in enumerate(defs) if e.file == d.file and name in e.names and not e.hidden_check]
            for i in same_file or ([fixtures[name]] if name in fixtures else []):
                if i not in seen:
                    seen.add(i)
                    todo.append(i)
    return seen


def _span(node: ast.stmt, lines: list[str]) -> tuple[int, int]:
    """0-based [start, end) of a statement with its decorators and the comment lines above it."""
    start = min([node.lineno] + [d.lineno for d in getattr(node, "decorator_list", [])]) - 1
    while start > 0 and lines[start - 1].lstrip().startswith("#"):
        start -= 1
    return start, node.end_lineno


def _visible_uses_reference(defs: list[_Definition], kept: set[int]) -> list[str]:
    fixture_users = [defs[i] for i in kept if REFERENCE_FIXTURE in defs[i].uses
                     and isinstance(defs[i].node, (ast.FunctionDef, ast.AsyncFunctionDef))]
    return [f"{d.file}::{d.node.name}" for d in fixture_users]


def cut_suite(suite_dir: Path) -> SuiteCut:
    """Split every ``*.py`` of ``suite_dir`` into visible text and hidden-check source."""
    files = sorted(p for p in suite_dir.rglob("*.py") if "__pycache__" not in p.parts)
    texts = {p.relative_to(suite_dir): p.read_text(encoding="utf-8") for p in files}
    defs: list[_Definition] = []
    for rel, text in texts.items():
        defs += _definitions(suite_dir / rel, rel, ast.parse(text, filename=str(suite_dir / rel)))
    kept = _reached(defs)
    users = _visible_uses_reference(defs, kept)
    if users:
        raise CourseError(f"visible checks of {suite_dir.name} use the '{REFERENCE_FIXTURE}' fixture, which the "
                          f"student kit cannot provide: {', '.join(sorted(users))}; make them hidden or recompute "
                          "the expected value in the grader")
    cut = SuiteCut()
    for rel, text in texts.items():
        lines = text.splitlines(keepends=True)
        drop = [False] * len(lines)
        for i, d in enumerate(defs):
            if d.file != rel or i in kept:
                continue
            start, end = _span(d.node, lines)
            drop[start:end] = [True] * (end - start)
            if d.hidden_check:
                cut.hidden_checks.setdefault(rel, []).append("".join(lines[start:end]))
            else:
                cut.dropped.append(f"{rel}::{', '.join(sorted(d.names))}")
        body = "".join(line for line, gone in zip(lines, drop) if not gone)
        if rel.name.startswith("test_") and not any(defs[i].file == rel and defs[i].root and _check_marker(defs[i].node)
                                                    for i in kept):
            continue  # a test file with no visible check left is not shipped
        cut.files[rel] = _squeeze_blank_lines(body)
    return cut


def _squeeze_blank_lines(text: str) -> str:
    """At most two blank lines in a row, as the removed definitions leave gaps."""
    out, blanks = [], 0
    for line in text.splitlines(keepends=True):
        blanks = blanks + 1 if not line.strip() else 0
        if blanks <= 2:
            out.append(line)
    return "".join(out).rstrip("\n") + "\n"
