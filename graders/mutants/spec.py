"""The mutant file format, checked where it is read.

    # assignments/01-lora/mutants/scale-alpha.toml
    title = "scaling = alpha instead of alpha / r"     # what a student got wrong (English)
    fails = ["lora_layer.output_matches_reference"]     # check ids it must fail; [] = correct answer
    flags = []                                          # flag kinds it must raise (optional)
    ci = true                                           # in the representative subset CI runs
    score = 38.0                                        # optional: the exact score it must get

    [[edit]]                                            # one or more cell edits
    notebook = "02-train.ipynb"
    cell = "lora-layer"                                 # grade_id of a cell of the filled release
    old = "self.scaling = alpha / r"                    # replace this text (must occur) ...
    new = "self.scaling = alpha"
    # source = '''...'''                                # ... or the whole new cell source
    # drop = true                                       # ... or leave the notebook out entirely

A mutant's name is its file name without ``.toml``; ``solution`` and ``untouched`` are taken.
"""
from __future__ import annotations

import re
import tomllib
from dataclasses import dataclass, field
from pathlib import Path

from graders import paths
from graders.errors import CourseError

RESERVED = ("solution", "untouched")
NAME = re.compile(r"^[a-z0-9][a-z0-9._-]{0,63}$")


@dataclass(frozen=True)
class Edit:
    notebook: str
    cell: str = ""
    old: str | None = None
    new: str | None = None
    source: str | None = None
    drop: bool = False


@dataclass(frozen=True)
class Mutant:
    name: str
    title: str
    fails: frozenset[str]
    edits: tuple[Edit, ...]
    flags: frozenset[str] = frozenset()
    ci: bool = False
    score: float | None = None
    path: Path | None = field(default=None, compare=False)

    @property
    def correct(self) -> bool:
        """A correct-but-different answer: it must keep full marks."""
        return not self.fails


def mutants_dir(assignment: str) -> Path:
    return paths.ASSIGNMENTS / assignment / "mutants"


def _edit(raw: dict, where: str, notebooks: tuple[str, ...]) -> Edit:
    unknown = set(raw) - {"notebook", "cell", "old", "new", "source", "drop"}
    if unknown:
        raise CourseError(f"{where}: unknown keys {sorted(unknown)} in [[edit]]")
    notebook = raw.get("notebook", "")
    if notebook not in notebooks:
        raise CourseError(f"{where}: [[edit]] notebook {notebook!r} is not one of {', '.join(notebooks)}")
    edit = Edit(notebook=notebook, cell=raw.get("cell", ""), old=raw.get("old"), new=raw.get("new"),
                source=raw.get("source"), drop=bool(raw.get("drop", False)))
    ways = sum([edit.old is not None, edit.source is not None, edit.drop])
    if ways != 1 or (edit.old is not None and edit.new is None):
        raise CourseError(f"{where}: an [[edit]] gives exactly one of old+new, source, or drop = true")
    if not edit.drop and not edit.cell:
        raise CourseError(f"{where}: an [[edit]] that changes a cell names it (cell = grade_id)")
    return edit


def load_mutant(path: Path, notebooks: tuple[str, ...]) -> Mutant:
    where = str(path.relative_to(paths.REPO_ROOT)) if path.is_relative_to(paths.REPO_ROOT) else str(path)
    name = path.stem
    if not NAME.match(name) or name in RESERVED:
        raise CourseError(f"{where}: a mutant's file name is lower-case letters, digits, . _ - and not {RESERVED}")
    try:
        data = tomllib.loads(path.read_text(encoding="utf-8"))
    except tomllib.TOMLDecodeError as err:
        raise CourseError(f"{where}: {err}") from err
    unknown = set(data) - {"title", "fails", "flags", "ci", "score", "edit"}
    if unknown:
        raise CourseError(f"{where}: unknown keys {sorted(unknown)}")
    if not isinstance(data.get("title"), str) or not data["title"].strip():
        raise CourseError(f"{where}: give a title (what the student got wrong)")
    if not isinstance(data.get("fails"), list) or not all(isinstance(x, str) for x in data["fails"]):
        raise CourseError(f"{where}: 'fails' is a list of check ids ([] for a correct-but-different answer)")
    edits = data.get("edit")
    if not isinstance(edits, list) or not edits:
        raise CourseError(f"{where}: give at least one [[edit]]")
    score = data.get("score")
    if score is not None and not isinstance(score, (int, float)):
        raise CourseError(f"{where}: score {score!r} is a number")
    return Mutant(name=name, title=data["title"].strip(), fails=frozenset(data["fails"]),
                  edits=tuple(_edit(e, where, notebooks) for e in edits), flags=frozenset(data.get("flags", [])),
                  ci=bool(data.get("ci", False)), score=None if score is None else float(score), path=path)


def load_mutants(assignment, names: list[str] | None = None, ci_only: bool = False) -> list[Mutant]:
    """The assignment's mutants in name order; ``names`` picks some (an unknown name is an error)."""
    folder = mutants_dir(assignment.name)
    found = {p.stem: p for p in sorted(folder.glob("*.toml"))} if folder.is_dir() else {}
    if names:
        missing = [n for n in names if n not in found]
        if missing:
            raise CourseError(f"no mutant {', '.join(missing)} in {folder}; known: {', '.join(found) or 'none'}")
        found = {n: found[n] for n in names}
    mutants = [load_mutant(p, assignment.notebooks) for p in found.values()]
    return [m for m in mutants if m.ci] if ci_only else mutants
