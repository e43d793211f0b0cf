"""The grader side of the channel: ask a sandboxed kernel for values and calls."""
from __future__ import annotations

import json
import os
import secrets
import stat
from pathlib import Path
from typing import Any

from graders.channel.errors import ChannelError, StudentError
from graders.channel.shim import SHIM

MAX_RESPONSE_BYTES = 256 * 2**20  # a tiny model's state_dict is ~1 MiB; a full one never crosses here


def read_capped(path: Path, cap: int = MAX_RESPONSE_BYTES) -> bytes:
    """Read a regular file the kernel wrote, without following a symlink it may have planted."""
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW)
    except OSError as err:
        raise ChannelError(f"no readable answer at {path.name}: {err.strerror}") from None
    try:
        info = os.fstat(fd)
        if not stat.S_ISREG(info.st_mode):
            raise ChannelError(f"{path.name} is not a regular file")
        if info.st_size > cap:
            raise ChannelError(f"{path.name} is {info.st_size:,} bytes, over the {cap:,}-byte cap")
        with os.fdopen(fd, "rb", closefd=False) as fh:
            return fh.read(cap + 1)
    finally:
        os.close(fd)


def _encode(value: Any, tensors: dict) -> Any:
    import torch  # imported on use: the batch process holds channels to the shared reference without torch

    if isinstance(value, torch.Tensor):
        key = f"a{len(tensors)}"
        tensors[key] = value.detach().cpu().contiguous()
        return {"__tensor__": key}
    if isinstance(value, (list, tuple)):
        return [_encode(v, tensors) for v in value]
    if isinstance(value, dict):
        return {str(k): _encode(v, tensors) for k, v in value.items()}
    if value is None or isinstance(value, (bool, int, float, str)):
        return value
    raise TypeError(f"cannot send a {type(value).__name__} to the kernel")


def _decode(value: Any, tensors: dict) -> Any:
    if isinstance(value, dict):
        if set(value) == {"__tensor__"}:
            key = value["__tensor__"]
            if key not in tensors:
                raise ChannelError(f"the answer refers to a tensor {key!r} it did not send")
            return tensors[key]
        if set(value) == {"__float__"} and value["__float__"] in ("nan", "inf", "-inf"):
            return float(value["__float__"])
        return {k: _decode(v, tensors) for k, v in value.items()}
    if isinstance(value, list):
        return [_decode(v, tensors) for v in value]
    if value is None or isinstance(value, (bool, int, float, str)):
        return value
    raise ChannelError(f"the answer holds a {type(value).__name__}, which JSON cannot")


def inside(root: Path, relpath: str) -> Path:
    """``root/relpath`` with every symlink resolved; refuse ``..``, absolute paths and links that
    land outside ``root``."""
    if Path(relpath).is_absolute() or ".." in Path(relpath).parts:
        raise ChannelError(f"{relpath!r} is not a path inside the scratch folder; refused")
    base = Path(root).resolve()
    path = (base / relpath).resolve()
    if path != base and base not in path.parents:
        raise ChannelError(f"{relpath!r} points outside the scratch folder (to {path}); refused")
    return path


class Channel:
    """Values, calls and files of one sandboxed kernel; every answer is size-capped and checked.

    Fails closed: a kernel that is gone, hung or breaks the format raises ``ChannelError``; the
    student's own exception raises ``StudentError`` (with ``ename`` and ``evalue``).
    """

    def __init__(self, session, max_bytes: int = MAX_RESPONSE_BYTES):
        self.session = session
        self.max_bytes = max_bytes
        self._installed = False
        self._root: Path | None = None

    def _run(self, code: str, timeout: float) -> None:
        if not self.session.alive():
            raise ChannelError("the kernel is not running (it crashed, ran out of memory or was stopped)")
        result = self.session.execute(code, timeout=timeout, cell="channel")
        if result.status in ("died", "memory_limit"):
            raise ChannelError(f"the kernel stopped while answering ({result.error})")
        if result.status == "timeout":
            raise ChannelError(f"no answer within {timeout:g} s")
        if result.status != "ok":
            raise ChannelError(f"the channel failed in the kernel: {result.error.splitlines()[0] if result.error else '?'}")

    def _install(self) -> None:
        if not self._installed:
            self._run(SHIM, timeout=30)
            self._installed = True

    def _folder(self, request: dict | None = None, tensors: dict | None = None) -> Path:
        """A fresh folder for one exchange, made by the grader in a grader-owned parent with a
        name the kernel cannot guess (so it cannot plant links there first); the request is
        written before the folder is handed to the kernel's uid."""
        if self._root is None:
            self._root = self.session.scratch / f".channel-{secrets.token_hex(6)}"
            self._root.mkdir(mode=0o755)
        folder = self._root / secrets.token_hex(8)
        folder.mkdir()
        if request is not None:
            (folder / "request.json").write_text(json.dumps(request))
            if tensors:
                from safetensors.torch import save_file

                save_file(tensors, str(folder / "request.safetensors"))
            for written in folder.iterdir():
                written.chmod(0o644)  # safetensors writes 0600; the kernel's uid must read it
        uid = getattr(self.session, "uid", None)
        if uid is not None:  # the kernel runs under its own uid and writes its answer here
            os.chown(folder, uid, uid)
        return folder

    def _answer(self, folder: Path) -> Any:
        raw = read_capped(folder / "response.json", self.max_bytes)
        try:
            payload = json.loads(raw)
        except (json.JSONDecodeError, UnicodeDecodeError) as err:
            raise ChannelError(f"the answer is not JSON ({err.msg if hasattr(err, 'msg') else err})") from None
        if not isinstance(payload, dict):
            raise ChannelError("the answer is not a JSON object")
        if "error" in payload:
            if not isinstance(payload["error"], str) or not isinstance(payload.get("message", ""), str):
                raise ChannelError("the answer's error is not text")
            raise StudentError(payload["error"], payload.get("message", ""))
        if "value" not in payload:
            raise ChannelError("the answer has no value")
        tensors = {}
        from safetensors.torch import load as load_safetensors

        if (folder / "response.safetensors").exists() or (folder / "response.safetensors").is_symlink():
            try:
                tensors = load_safetensors(read_capped(folder / "response.safetensors", self.max_bytes))
            except ChannelError:
                raise
            except Exception as err:
                raise ChannelError(f"the tensors of the answer do not parse as safetensors: {err}") from None
        return _decode(payload["value"], tensors)

    def value(self, name: str, timeout: float = 60.0) -> Any:
        """The value of a global of the notebook: JSON types, tensors, dicts of tensors, state_dicts."""
        self._install()
        folder = self._folder()
        self._run(f"__course_channel__.value({name!r}, {str(folder)!r})", timeout)
        return self._answer(folder)

    def call(self, func: str, *args: Any, timeout: float = 60.0, **kwargs: Any) -> Any:
        """Call a function the notebook defines, with JSON values and tensors as arguments."""
        self._install()
        tensors: dict = {}
        request = {"args": _encode(list(args), tensors), "kwargs": _encode(kwargs, tensors)}
        folder = self._folder(request, tensors)
        self._run(f"__course_channel__.call({func!r}, {str(folder)!r})", timeout)
        return self._answer(folder)

    # --- files the notebook wrote --------------------------------------------------------------
    def artifact_path(self, relpath: str) -> Path:
        """``relpath`` inside the kernel's scratch folder; never a path or link leading out of it."""
        return inside(self.session.scratch, relpath)

    def read_json(self, relpath: str) -> Any:
        """A JSON file the notebook wrote, size-capped; JSON types only."""
        raw = read_capped(self.artifact_path(relpath), self.max_bytes)
        try:
            return json.loads(raw)
        except (json.JSONDecodeError, UnicodeDecodeError) as err:
            raise ChannelError(f"{relpath} is not valid JSON: {err}") from None

    def read_safetensors(self, relpath: str) -> dict:
        """The tensors of a safetensors file the notebook wrote, size-capped."""
        from safetensors.torch import load as load_safetensors

        raw = read_capped(self.artifact_path(relpath), self.max_bytes)
        try:
            return load_safetensors(raw)
        except Exception as err:  # safetensors raises its own SafetensorError on a malformed file
            raise ChannelError(f"{relpath} is not a valid safetensors file: {err}") from None
