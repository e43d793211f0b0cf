"""Where things live in the course repository.

The repository root is found from this file (graders is installed in editable mode), or from
``COURSE_ROOT`` when an instructor keeps a course tree elsewhere.
"""
from __future__ import annotations

import os
from pathlib import Path

REPO_ROOT = Path(os.environ.get("COURSE_ROOT", Path(__file__).resolve().parent.parent))
ASSIGNMENTS = REPO_ROOT / "assignments"
RELEASE = REPO_ROOT / "release"
SOLUTIONS = REPO_ROOT / "solutions"
SUITES = REPO_ROOT / "graders" / "suites"
SAMPLES = REPO_ROOT / "samples"
RESULTS = REPO_ROOT / "results"
