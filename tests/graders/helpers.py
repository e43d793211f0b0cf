"""Build submissions for tests."""
from __future__ import annotations

from pathlib import Path

import nbformat

from graders.release.fill import filled_release  # noqa: F401  (re-exported for the tests)

REPO = Path(__file__).resolve().parents[2]


def write_submission(root: Path, student: str, assignment: str, notebooks: dict[str, nbformat.NotebookNode | bytes | str]) -> Path:
    folder = root / student / assignment
    folder.mkdir(parents=True, exist_ok=True)
    for name, nb in notebooks.items():
        if isinstance(nb, bytes):
            (folder / name).write_bytes(nb)
        elif isinstance(nb, str):
            (folder / name).write_text(nb)
        else:
            nbformat.write(nb, folder / name)
    return folder


def survivors(pids: list[int], wait_s: float = 10.0) -> list[int]:
    """The processes of ``pids`` still running (zombies aside) after up to ``wait_s`` seconds: a
    SIGKILLed process takes a moment to die, and its exit is not instant on a loaded machine."""
    import time

    import psutil

    def running(pid: int) -> bool:
        try:
            return psutil.Process(pid).status() != psutil.STATUS_ZOMBIE
        except psutil.Error:
            return False

    deadline = time.monotonic() + wait_s
    while True:
        alive = [pid for pid in pids if running(pid)]
        if not alive or time.monotonic() > deadline:
            return alive
        time.sleep(0.1)
