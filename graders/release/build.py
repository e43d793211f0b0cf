"""``course release``: nbgrader generate_assignment / generate_solution into release/, solutions/.

The build runs in a private course directory (its nbgrader gradebook holds every hidden test and
never leaves it), writes into a staging tree, and only then swaps the staged folders in, so a
failed build leaves the previous release intact. ``check`` builds the same way into a temporary
tree and compares it byte for byte with what is committed.
"""
from __future__ import annotations

import filecmp
import io
import logging
import shutil
from dataclasses import dataclass
from pathlib import Path

import nbformat

from graders import paths
from graders.assignment import Assignment, load_assignment
from graders.errors import CourseError
from graders.release.notebooks import source_to_notebook, write_canonical
from graders.sandbox.scratch import scratch_dir

# Files and folders of an assignment folder that are instructor-only, never copied to students.
INSTRUCTOR_ONLY = {"assignment.toml", "mutants"}  # mutants hold edited solution lines


@dataclass
class BuildOutput:
    assignment: str
    release: Path
    solution: Path


def _nbgrader_config(course_root: Path, assignment: str):
    from nbgrader.preprocessors import ClearMarkScheme, ClearOutput, IncludeHeaderFooter, LockCells
    from traitlets.config import Config

    c = Config()
    c.CourseDirectory.root = str(course_root)
    c.CourseDirectory.db_url = f"sqlite:///{course_root / 'gradebook.db'}"
    c.CourseDirectory.assignment_id = assignment
    c.CourseDirectory.course_id = "llm-one-piece"
    c.GenerateAssignment.force = True
    c.GenerateSolution.force = True
    # nbgrader executes solutions by default; outputs (timings, addresses) would make the build
    # irreproducible and slow, so the solution version is built without running it.
    c.GenerateSolution.preprocessors = [IncludeHeaderFooter, LockCells, ClearOutput, ClearMarkScheme]
    return c


def _stage_sources(assignment: Assignment, source_dir: Path) -> None:
    source_dir.mkdir(parents=True)
    notebook_sources = {assignment.source_notebook(nb).name for nb in assignment.notebooks}
    for nb in assignment.notebooks:
        write_canonical(source_to_notebook(assignment.source_notebook(nb)), source_dir / nb)
    for item in sorted(assignment.source_dir.iterdir()):
        if item.name in INSTRUCTOR_ONLY or item.name in notebook_sources or item.name.startswith("."):
            continue
        if item.name == "__pycache__":
            continue
        copy = shutil.copytree if item.is_dir() else shutil.copy2
        copy(item, source_dir / item.name)


def _canonicalise(tree: Path) -> None:
    for nb_path in sorted(tree.rglob("*.ipynb")):
        write_canonical(nbformat.read(nb_path, as_version=4), nb_path)
    for path in tree.rglob("*"):
        if path.is_file():
            path.chmod(0o644)


def build_assignment(assignment: Assignment, work: Path) -> BuildOutput:
    """Build one assignment inside ``work``; raises CourseError naming what failed."""
    from nbgrader.converters import GenerateAssignment, GenerateSolution
    from nbgrader.coursedir import CourseDirectory

    paths.venv_tools_on_path()
    course_root = work / "course"
    _stage_sources(assignment, course_root / "source" / assignment.name)
    config = _nbgrader_config(course_root, assignment.name)
    coursedir = CourseDirectory(config=config)
    for converter in (GenerateAssignment, GenerateSolution):
        app = converter(coursedir=coursedir, config=config)
        log = io.StringIO()
        handler = logging.StreamHandler(log)
        app.log.handlers[:] = [handler]
        app.log.setLevel(logging.WARNING)
        try:
            app.start()
        except Exception as err:  # nbgrader raises its own types and plain exceptions
            detail = "\n".join(log.getvalue().strip().splitlines()[-8:])
            raise CourseError(f"nbgrader {converter.__name__} failed for {assignment.name}:\n{detail}") from err
    release = course_root / "release" / assignment.name
    solution = course_root / "solution" / assignment.name
    for tree in (release, solution):
        if not tree.is_dir():
            raise CourseError(f"nbgrader wrote no {tree.parent.name}/ for {assignment.name}")
        _canonicalise(tree)
    return BuildOutput(assignment.name, release, solution)


def _swap_in(built: Path, target: Path) -> None:
    """Replace ``target`` by ``built`` with renames, so readers never see half a tree."""
    target.parent.mkdir(parents=True, exist_ok=True)
    staged = target.with_name(f".{target.name}.new")
    old = target.with_name(f".{target.name}.old")
    for leftover in (staged, old):
        if leftover.exists():
            shutil.rmtree(leftover)
    shutil.copytree(built, staged)
    if target.exists():
        target.rename(old)
    staged.rename(target)
    if old.exists():
        shutil.rmtree(old)


def release(names: list[str]) -> list[BuildOutput]:
    """Build every named assignment first, then swap all of them in."""
    assignments = [load_assignment(n) for n in names]
    with scratch_dir("release") as tmp:
        outputs = [build_assignment(a, Path(tmp) / a.name) for a in assignments]
        for out in outputs:
            _swap_in(out.release, paths.RELEASE / out.assignment)
            _swap_in(out.solution, paths.SOLUTIONS / out.assignment)
    return [BuildOutput(o.assignment, paths.RELEASE / o.assignment, paths.SOLUTIONS / o.assignment)
            for o in outputs]


def _tree_differences(built: Path, committed: Path) -> list[str]:
    if not committed.is_dir():
        return [f"{committed.relative_to(paths.REPO_ROOT)}/ is missing"]
    problems = []
    cmp = filecmp.dircmp(built, committed)

    def walk(c: filecmp.dircmp, rel: Path) -> None:
        for name in c.left_only:
            problems.append(f"{committed.relative_to(paths.REPO_ROOT) / rel / name} is missing")
        for name in c.right_only:
            problems.append(f"{committed.relative_to(paths.REPO_ROOT) / rel / name} is not built from any source")
        for name in c.common_files:
            if not filecmp.cmp(Path(c.left) / name, Path(c.right) / name, shallow=False):
                problems.append(f"{committed.relative_to(paths.REPO_ROOT) / rel / name} differs from its source")
        for name, sub in c.subdirs.items():
            walk(sub, rel / name)

    walk(cmp, Path())
    return problems


def check(names: list[str]) -> list[str]:
    """Rebuild into a temporary tree; return one line per drifted file (empty when clean)."""
    problems: list[str] = []
    with scratch_dir("release-check") as tmp:
        for name in names:
            out = build_assignment(load_assignment(name), Path(tmp) / name)
            problems += _tree_differences(out.release, paths.RELEASE / name)
            problems += _tree_differences(out.solution, paths.SOLUTIONS / name)
    for root in (paths.RELEASE, paths.SOLUTIONS):
        if root.is_dir():
            for stray in sorted(p for p in root.iterdir() if p.is_dir() and not p.name.startswith(".")):
                if stray.name not in names and not (paths.ASSIGNMENTS / stray.name).is_dir():
                    problems.append(f"{stray.relative_to(paths.REPO_ROOT)}/ has no source in assignments/")
    return problems
