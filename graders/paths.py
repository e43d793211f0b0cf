"""Where things live in the course repository.

The repository root is found from this file (graders is installed in editable mode), or from
``COURSE_ROOT`` when an instructor keeps a course tree elsewhere.
"""
from __future__ import annotations

import os
import sys
from pathlib import Path

REPO_ROOT = Path(os.environ.get("COURSE_ROOT", Path(__file__).resolve().parent.parent))
ASSIGNMENTS = REPO_ROOT / "assignments"
RELEASE = REPO_ROOT / "release"
SOLUTIONS = REPO_ROOT / "solutions"
SUITES = REPO_ROOT / "graders" / "suites"
SAMPLES = REPO_ROOT / "samples"
RESULTS = REPO_ROOT / "results"
# Written by `course student-kit`: its presence makes this tree a student kit (no sources, no
# solutions, visible checks only), where only the students' commands exist.
KIT_MARKER = REPO_ROOT / "course-kit.json"


def is_student_kit() -> bool:
    return KIT_MARKER.is_file()


def venv_tools_on_path() -> None:
    """nbgrader shells out to `alembic`, Jupyter finds kernels by name: the tools of this
    interpreter's environment must be found even when the venv is not activated."""
    bindir = os.path.dirname(sys.executable)
    if bindir not in os.environ.get("PATH", "").split(os.pathsep):
        os.environ["PATH"] = bindir + os.pathsep + os.environ.get("PATH", "")
