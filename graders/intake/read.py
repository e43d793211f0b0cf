"""Read a submitted file into an nbformat v4 notebook, or say plainly why it cannot be read."""
from __future__ import annotations

import json
from pathlib import Path

import nbformat

MAX_NOTEBOOK_BYTES = 50 * 2**20  # a course notebook without outputs is well under 1 MiB


class UnreadableNotebook(Exception):
    """The file is not a notebook we can grade; the text is shown to the student."""


def read_notebook(path: Path) -> nbformat.NotebookNode:
    size = path.stat().st_size
    if size == 0:
        raise UnreadableNotebook(f"{path.name} is empty (0 bytes)")
    if size > MAX_NOTEBOOK_BYTES:
        raise UnreadableNotebook(f"{path.name} is {size / 2**20:.0f} MiB; notebooks over "
                                 f"{MAX_NOTEBOOK_BYTES // 2**20} MiB are refused (clear the outputs)")
    raw = path.read_bytes()
    try:
        text = raw.decode("utf-8-sig")
    except UnicodeDecodeError as err:
        raise UnreadableNotebook(f"{path.name} is not UTF-8 text (byte {err.start}); "
                                 "save it again from Jupyter") from err
    try:
        data = json.loads(text)
    except json.JSONDecodeError as err:
        raise UnreadableNotebook(f"{path.name} is not valid JSON (line {err.lineno}, column {err.colno}: "
                                 f"{err.msg}); was it edited by hand?") from err
    if not isinstance(data, dict) or "cells" not in data and "worksheets" not in data:
        raise UnreadableNotebook(f"{path.name} is JSON but not a Jupyter notebook (no cells)")
    major = data.get("nbformat")
    if major not in (3, 4):
        raise UnreadableNotebook(f"{path.name} has nbformat {major!r}; only versions 3 and 4 are read")
    try:
        nb = nbformat.reads(text, as_version=4)
        nbformat.validate(nb)
    except Exception as err:  # nbformat raises ValidationError, KeyError, TypeError on odd shapes
        first = str(err).strip().splitlines()[0] if str(err).strip() else type(err).__name__
        raise UnreadableNotebook(f"{path.name} does not validate as a notebook: {first}") from err
    return nb
