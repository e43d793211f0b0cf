"""What suites see as ``submission`` and ``reference``: executed notebooks behind the channel.

A suite asks for values, calls functions and reads artifacts; everything it gets crossed the
channel as JSON or safetensors. A notebook that was not submitted, or could not be read,
answers every request with ``NotebookMissing``, which the plugin scores as failed.
"""
from __future__ import annotations

from pathlib import Path
from typing import Any

from graders.channel import ChannelError


def inside_scratch(scratch: Path, relpath: str) -> Path:
    """``scratch/relpath`` with every symlink resolved; refuse anything that lands outside."""
    root = scratch.resolve()
    path = (root / relpath).resolve()
    if path != root and root not in path.parents:
        raise ChannelError(f"{relpath!r} points outside the submission's folder; refused")
    return path


class NotebookMissing(ChannelError):
    check_status = "failed"  # the student's omission, not the grader's fault


class NotebookHandle:
    def __init__(self, name: str, channel: Any | None, scratch: Path, missing_reason: str = "",
                 substituted: dict[str, str] | None = None):
        self.name = name
        self._channel = channel
        self.scratch = scratch
        self.missing_reason = missing_reason
        self.substituted = substituted if substituted is not None else {}  # artifact path -> producer
        self.timeout_s = 60.0

    def _require(self):
        if self._channel is None:
            raise NotebookMissing(self.missing_reason or f"{self.name} was not executed")
        return self._channel

    def value(self, name: str) -> Any:
        return self._require().value(name, timeout=self.timeout_s)

    def call(self, func: str, *args: Any, **kwargs: Any) -> Any:
        return self._require().call(func, *args, timeout=self.timeout_s, **kwargs)

    def cpu_seconds(self) -> float:
        """CPU time of the notebook's kernel tree so far, read by the grader from outside: speed
        judged on it does not move with the other processes of a loaded machine."""
        return self._require().session.cpu_seconds()

    def artifact_path(self, relpath: str) -> Path:
        """A file or folder the notebooks wrote. Asked of the notebook that should have produced
        it, a reference copy put in its place counts as missing: the producer earns nothing for it."""
        for path, producer in self.substituted.items():
            if producer == self.name and (relpath == path or relpath.startswith(path.rstrip("/") + "/")):
                from graders.plugin.i18n import say

                raise NotebookMissing(say(f"{self.name} 沒有產生合格的 {path}；後面的 notebook 改用參考解答的版本評分",
                                          f"{self.name} did not produce a valid {path}; later notebooks were graded "
                                          "with the reference's copy"))
        return inside_scratch(self.scratch, relpath)

    def read_json(self, relpath: str) -> Any:
        return self._require().read_json(relpath)

    def read_safetensors(self, relpath: str) -> dict:
        return self._require().read_safetensors(relpath)


class SubmissionHandle:
    """All notebooks of one submission; single-notebook assignments may skip ``nb()``."""

    def __init__(self, notebooks: dict[str, NotebookHandle], scratch: Path, uid: int | None = None):
        self.notebooks = notebooks
        self.scratch = scratch
        self.uid = uid  # the kernels' uid: what the grader puts in scratch must be theirs to read
        self._timeout_s = 60.0

    @property
    def timeout_s(self) -> float:
        return self._timeout_s

    @timeout_s.setter
    def timeout_s(self, value: float) -> None:
        self._timeout_s = value
        for handle in self.notebooks.values():
            handle.timeout_s = value

    def put(self, source: Path, relpath: str) -> str:
        """Copy a trusted file or folder (e.g. the reference's adapter) into the scratch folder
        for the student's code to use; returns the path as the kernel sees it."""
        import shutil

        from graders.sandbox.limits import hand_over

        target = inside_scratch(self.scratch, relpath)
        if not target.exists():
            target.parent.mkdir(parents=True, exist_ok=True)
            (shutil.copytree if Path(source).is_dir() else shutil.copy2)(source, target)
            hand_over(target, self.uid) if target.is_dir() else hand_over(target.parent, self.uid)
        return str(target)

    def nb(self, name: str) -> NotebookHandle:
        for key, handle in self.notebooks.items():
            if name in (key, key.removesuffix(".ipynb")):
                return handle
        raise KeyError(f"no notebook {name!r}; this assignment has {', '.join(self.notebooks)}")

    def _only(self) -> NotebookHandle:
        if len(self.notebooks) != 1:
            raise TypeError("this assignment has several notebooks: use submission.nb(name)")
        return next(iter(self.notebooks.values()))

    def value(self, name: str) -> Any:
        return self._only().value(name)

    def call(self, func: str, *args: Any, **kwargs: Any) -> Any:
        return self._only().call(func, *args, **kwargs)

    def artifact_path(self, relpath: str) -> Path:
        return self._only().artifact_path(relpath)
