"""Write the student kit: a repository a course can hand to students.

It holds, for the chosen assignments, the release notebooks, what they import (``common_utils``
with its tokenizer, data and any weights shipped there), each assignment's settings, the grader
engine that ``course check`` needs, the *visible* checks cut out of the suites
(``graders.kit.visible``), a README in zh-TW then English, ``scripts/bootstrap`` and a CI
workflow for the student's fork. It never holds ``solutions/``, the instructor sources
(``assignments/<a>/*.py``), hidden checks, mutants, samples, results or a gradebook: the kit is
built by listing what goes in, not by removing what must not.
"""
from __future__ import annotations

import json
import shutil
import subprocess
import tomllib
from pathlib import Path

from graders import paths
from graders.assignment import load_assignment
from graders.errors import CourseError
from graders.kit.texts import kit_pyproject, readme, self_check_notebook, workflow
from graders.kit.visible import cut_suite

# Parts of the graders package that `course check` does not run: instructor tooling.
NOT_SHIPPED = ("suites", "release", "mutants", "exports", "kit")
# Modules of graders.cli that the students' commands import besides their own.
CLI_SHARED = ("__init__", "main", "grade", "progress")
SKIPPED_FILES = ("__pycache__", ".pyc", ".ipynb_checkpoints")


def _copy_tree(source: Path, dest: Path, skip_dirs: tuple[str, ...] = ()) -> None:
    def ignore(folder: str, names: list[str]) -> list[str]:
        top = Path(folder) == source
        return [n for n in names if n.endswith(SKIPPED_FILES) or (top and n in skip_dirs)]

    shutil.copytree(source, dest, ignore=ignore, dirs_exist_ok=True)


def _graders(out: Path) -> None:
    from graders.cli.main import STUDENT_COMMANDS, _module_name

    _copy_tree(paths.REPO_ROOT / "graders", out / "graders", skip_dirs=NOT_SHIPPED)
    cli = {m.rsplit(".", 1)[-1] for m in map(_module_name, STUDENT_COMMANDS)} | set(CLI_SHARED)
    for module in (out / "graders" / "cli").glob("*.py"):
        if module.stem not in cli:
            module.unlink()
    suites = out / "graders" / "suites"
    suites.mkdir()
    for name in ("__init__.py", "artifacts.py"):  # the trusted loaders every suite shares
        if (paths.SUITES / name).is_file():
            shutil.copy2(paths.SUITES / name, suites / name)


def _shared_suite_modules(out: Path) -> None:
    """The shared helpers of graders/suites that the kit's visible checks import (recomputation
    helpers such as a Unix-socket client; they hold no check), and only those."""
    import re

    suites = out / "graders" / "suites"
    wanted = {m for f in suites.rglob("*.py") for m in re.findall(r"graders\.suites\.(\w+)", f.read_text(encoding="utf-8"))}
    for name in sorted(wanted):
        source = paths.SUITES / f"{name}.py"
        if source.is_file() and not (suites / source.name).exists():
            shutil.copy2(source, suites / source.name)


def _assignment(name: str, out: Path) -> int:
    assignment = load_assignment(name)
    _copy_tree(paths.RELEASE / name, out / "release" / name)
    settings = out / "assignments" / name
    settings.mkdir(parents=True)
    shutil.copy2(assignment.source_dir / "assignment.toml", settings / "assignment.toml")
    cut = cut_suite(assignment.suite_dir)
    for rel, text in cut.files.items():
        target = out / "graders" / "suites" / name / rel
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_text(text, encoding="utf-8")
    return sum(len(v) for v in cut.hidden_checks.values())


def _source_commit() -> str:
    try:
        return subprocess.run(["git", "-C", str(paths.REPO_ROOT), "rev-parse", "--short", "HEAD"],
                              capture_output=True, text=True, check=True).stdout.strip()
    except (OSError, subprocess.CalledProcessError):
        return "unknown"


def build_kit(names: list[str], out: Path) -> dict:
    """Write the kit for ``names`` into ``out`` (which must not exist or be empty); return its manifest."""
    if out.exists() and any(out.iterdir()):
        raise CourseError(f"{out} is not empty; give a new folder to --out")
    missing = [n for n in names if not (paths.RELEASE / n).is_dir()]
    if missing:
        raise CourseError(f"no release of {', '.join(missing)}: run `course release` first")
    out.mkdir(parents=True, exist_ok=True)
    _graders(out)
    hidden = {name: _assignment(name, out) for name in names}
    _shared_suite_modules(out)
    _copy_tree(paths.REPO_ROOT / "common_utils", out / "common_utils")
    (out / "scripts").mkdir()
    for script in ("bootstrap", "system-tools"):  # bootstrap runs system-tools
        shutil.copy2(paths.REPO_ROOT / "scripts" / script, out / "scripts" / script)
    shutil.copy2(paths.REPO_ROOT / "constraints.txt", out / "constraints.txt")
    project = tomllib.loads((paths.REPO_ROOT / "pyproject.toml").read_text(encoding="utf-8"))["project"]
    notebooks = {n: list(load_assignment(n).notebooks) for n in names}
    files = {
        "pyproject.toml": kit_pyproject(project),
        "README.md": readme(notebooks),
        ".github/workflows/self-check.yml": workflow(),
        ".gitignore": ".venv/\n__pycache__/\n*.egg-info/\nfeedback/\n.ipynb_checkpoints/\n",
        "self-check.ipynb": self_check_notebook(notebooks),
    }
    for rel, text in files.items():
        (out / rel).parent.mkdir(parents=True, exist_ok=True)
        (out / rel).write_text(text, encoding="utf-8")
    manifest = {"assignments": names, "built_from": _source_commit(), "hidden_checks_left_out": hidden}
    paths_file = out / paths.KIT_MARKER.name
    paths_file.write_text(json.dumps(manifest, indent=1, ensure_ascii=False) + "\n", encoding="utf-8")
    return manifest

