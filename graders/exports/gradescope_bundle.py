"""The Gradescope autograder zip of one assignment.

Gradescope unpacks the zip into /autograder/source, runs ``setup.sh`` once to build its image
and ``run_autograder`` per submission (both in graders/exports/autograder/). The zip holds what
the engine needs and nothing else: the package code, the pinned install inputs, and this
assignment's source, release, solution and grader suite (no other assignment's hidden tests,
no results, no virtual environment).
"""
from __future__ import annotations

import subprocess
import zipfile
from pathlib import Path

from graders import paths
from graders.errors import CourseError

SCRIPTS = Path(__file__).parent / "autograder"
SHARED = ("pyproject.toml", "constraints.txt", "scripts/bootstrap", "graders", "common_utils")


def members(assignment: str) -> list[str]:
    """Repository files of the bundle (tracked by git, so no caches or local results)."""
    wanted = list(SHARED) + [f"{top}/{assignment}" for top in ("assignments", "release", "solutions")]
    try:
        out = subprocess.run(["git", "ls-files", "-z", "--", *wanted], cwd=paths.REPO_ROOT, check=True,
                             capture_output=True).stdout
    except (OSError, subprocess.CalledProcessError) as err:
        raise CourseError(f"cannot list the repository's files with git in {paths.REPO_ROOT}: {err}") from None
    files = [f for f in out.decode().split("\0") if f]
    suites = "graders/suites/"
    return sorted(f for f in files if not f.startswith(suites) or f.startswith(f"{suites}{assignment}/")
                  or f.count("/") == 2)  # suites' shared files (e.g. graders/suites/__init__.py) stay


def build_bundle(assignment: str, out: Path) -> Path:
    if not (paths.SUITES / assignment).is_dir():
        raise CourseError(f"no grader suite graders/suites/{assignment}; nothing to bundle")
    out = Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = out.with_suffix(".tmp")
    with zipfile.ZipFile(tmp, "w", zipfile.ZIP_DEFLATED) as zf:
        for name in ("setup.sh", "run_autograder"):
            info = zipfile.ZipInfo(name)
            info.external_attr = 0o100755 << 16  # executable: Gradescope runs them directly
            zf.writestr(info, (SCRIPTS / name).read_bytes())
        zf.writestr("autograder.env", f"ASSIGNMENT={assignment}\n")
        for rel in members(assignment):
            path = paths.REPO_ROOT / rel
            if path.is_file():
                zf.write(path, rel)
    tmp.replace(out)
    return out
