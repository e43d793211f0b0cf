"""The grader version: what a re-run compares to decide whether a stored grade still stands."""
from __future__ import annotations

import hashlib

from graders import paths
from graders.assignment import Assignment

# Bump when a change to the engine can change a score for the same files.
ENGINE_VERSION = "1"


def grader_version(assignment: Assignment) -> str:
    digest = hashlib.sha256(ENGINE_VERSION.encode())
    inputs = sorted(assignment.suite_dir.rglob("*.py")) + sorted((paths.RELEASE / assignment.name).rglob("*.ipynb")) \
        + sorted((paths.SOLUTIONS / assignment.name).rglob("*.ipynb"))
    for path in inputs:
        if "__pycache__" in path.parts:
            continue
        digest.update(str(path.relative_to(paths.REPO_ROOT)).encode())
        digest.update(path.read_bytes())
    return f"{ENGINE_VERSION}-{digest.hexdigest()[:12]}"
