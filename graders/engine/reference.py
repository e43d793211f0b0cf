"""The reference: the solution notebooks executed once per worker under the same profile.

Started on first use (a suite that never asks for it costs nothing) and kept alive for the
whole batch, so every student's checks compare against the same run.
"""
from __future__ import annotations

from typing import Any

import nbformat

from graders import paths
from graders.assignment import Assignment


class ReferenceUnavailable(RuntimeError):
    pass


class LazyReference:
    def __init__(self, assignment: Assignment, options):
        self.assignment = assignment
        self.options = options
        self._executed = None
        self._handle = None
        self.timeout_s = 60.0

    def _get(self):
        if self._handle is None:
            from graders.engine.grade_one import ExecutedNotebooks, make_policy

            folder = paths.SOLUTIONS / self.assignment.name
            if paths.is_student_kit():
                raise ReferenceUnavailable("a student kit holds no reference solution")
            if not folder.is_dir():
                raise ReferenceUnavailable(f"solutions/{self.assignment.name} is missing: run `course release`")
            notebooks = {n: nbformat.read(folder / n, as_version=4) for n in self.assignment.notebooks}
            for nb in notebooks.values():
                for cell in nb.cells:
                    if cell.cell_type == "code":
                        cell.outputs, cell.execution_count = [], None
            self._executed = ExecutedNotebooks(self.assignment, notebooks, {}, make_policy(self.assignment, self.options, []))
            self._handle = self._executed.__enter__()
            broken = [(nb, c["cell"], c["error"]) for nb, cells in self._executed.cells.items()
                      for c in cells if c["status"] != "ok"]
            if broken:
                nb, cell, error = broken[0]
                raise ReferenceUnavailable(f"the reference solution fails in {nb} cell {cell}: {error}")
        self._handle.timeout_s = self.timeout_s
        return self._handle

    def __getattr__(self, name: str) -> Any:
        if name.startswith("_"):
            raise AttributeError(name)
        return getattr(self._get(), name)

    def close(self) -> None:
        if self._executed is not None:
            self._executed.__exit__(None, None, None)
            self._executed = self._handle = None
