"""An assignment's settings, read from ``assignments/<name>/assignment.toml``."""
from __future__ import annotations

import tomllib
from dataclasses import dataclass, field
from pathlib import Path

from graders import paths
from graders.errors import CourseError


@dataclass(frozen=True)
class Limits:
    cell_timeout_s: float = 120.0  # one cell; a training cell under `tiny` takes seconds
    notebook_timeout_s: float = 900.0  # the whole notebook, all cells together
    memory_mb: int = 6144  # address-space cap of the kernel; torch maps a lot of virtual memory
    max_file_mb: int = 1024  # the largest file a kernel may write (a merged 7B model is ~13 GB: see [limits.full])
    max_processes: int = 128  # processes and threads of one kernel's tree (torchrun ranks count too)
    # True where the notebooks only grade right inside bubblewrap (13-deepspeed-zero's ranks): such
    # an assignment is refused, with the reason, rather than graded wrongly in degraded mode.
    requires_isolation: bool = False
    # Fork kernels from a per-worker zygote with torch, transformers and peft imported once
    # (graders/sandbox/zygote.py); false, or `course grade --cold-kernels`, starts each one afresh.
    warm_kernels: bool = True

    def __post_init__(self) -> None:
        for name in ("cell_timeout_s", "notebook_timeout_s", "memory_mb", "max_processes", "max_file_mb"):
            if getattr(self, name) <= 0:
                raise CourseError(f"[limits] {name} must be positive, got {getattr(self, name)!r}")


@dataclass(frozen=True)
class Assignment:
    name: str
    title: str
    notebooks: tuple[str, ...]
    limits: Limits = field(default_factory=Limits)
    settings: dict = field(default_factory=dict)  # assignment-specific tables (targets, models)
    full_limits: Limits | None = None  # [limits.full]: what changes under the full profile (GPU runners)

    def limits_for(self, profile: str) -> Limits:
        return self.full_limits if profile == "full" and self.full_limits is not None else self.limits

    @property
    def source_dir(self) -> Path:
        return paths.ASSIGNMENTS / self.name

    @property
    def suite_dir(self) -> Path:
        return paths.SUITES / self.name

    def source_notebook(self, notebook: str) -> Path:
        """The jupytext source of a notebook (``basics.ipynb`` -> ``basics.py``)."""
        return self.source_dir / (Path(notebook).stem + ".py")


def list_assignments() -> list[str]:
    if not paths.ASSIGNMENTS.is_dir():
        return []
    return sorted(p.name for p in paths.ASSIGNMENTS.iterdir() if (p / "assignment.toml").is_file())


def load_assignment(name: str) -> Assignment:
    """Read and check an assignment's settings; an unknown name lists the known ones."""
    path = paths.ASSIGNMENTS / name / "assignment.toml"
    if not path.is_file():
        known = ", ".join(list_assignments()) or "none"
        raise CourseError(f"unknown assignment {name!r}; known assignments: {known}")
    try:
        data = tomllib.loads(path.read_text(encoding="utf-8"))
    except tomllib.TOMLDecodeError as err:
        raise CourseError(f"{path}: {err}") from err
    where = f"in {path.relative_to(paths.REPO_ROOT)}"
    try:
        raw = dict(data.pop("limits", {}))
        full = raw.pop("full", None)
        limits = Limits(**raw)
        full_limits = Limits(**{**raw, **full}) if full is not None else None
    except TypeError as err:
        raise CourseError(f"[limits] {where}: {err}") from err
    except CourseError as err:
        raise CourseError(f"{err} {where}") from err
    notebooks = tuple(data.pop("notebooks", ()))
    if not notebooks:
        raise CourseError(f"'notebooks' is empty or missing {where}")
    assignment = Assignment(name=name, title=data.pop("title", name), notebooks=notebooks,
                            limits=limits, settings=data, full_limits=full_limits)
    for spec in assignment.settings.get("artifacts", []):
        named = [spec.get("produced_by")] + list(spec.get("needed_by", []))
        unknown = [n for n in named if n not in notebooks]
        if not spec.get("path") or unknown:
            raise CourseError(f"[[artifacts]] {spec!r} {where}: needs a path, and produced_by/needed_by "
                              f"from {', '.join(notebooks)} (unknown: {unknown})")
        from graders.engine.artifacts import VALIDATORS

        if spec.get("validate") is not None and spec["validate"] not in VALIDATORS:
            raise CourseError(f"[[artifacts]] {spec['path']} {where}: unknown validate {spec['validate']!r}; "
                              f"known: {', '.join(VALIDATORS)}")
    for nb in notebooks if not paths.is_student_kit() else ():  # a kit ships no sources
        if not assignment.source_notebook(nb).is_file():
            raise CourseError(f"notebook {nb!r} listed {where} has no source "
                              f"{assignment.source_notebook(nb).relative_to(paths.REPO_ROOT)}")
    return assignment
