"""Warm kernels: a template process per grading worker that imports the heavy modules once and
forks one kernel per request, so that a notebook's kernel starts with torch, transformers and
peft already in memory (~5.5 s of CPU a kernel otherwise pays in its ``setup`` cell).

Why a fork server and not a pool of idle kernels: an idle kernel is one submission's process
from the moment it is made (its uid, its scratch, its namespaces), so a pool would have to guess
the next submission; a fork is made for a submission when it is asked for, and costs ~50 ms.

The zygote is started like a cold kernel: the same bwrap allow-list view (instructor tree absent),
``--die-with-parent``, no network, its own pid namespace; it differs in three ways, each needed to
make a kernel per request: it runs as root inside the view with CAP_SYS_ADMIN, CAP_NET_ADMIN,
CAP_SETUID, CAP_SETGID and CAP_SETPCAP (and no other: it cannot read the kernels' 0700 scratch
folders); its view binds the scratch *parent* folder writable; and it runs trusted code only,
``zygote_main.py``, which reads nothing a student wrote. Every kernel it forks then gets, before
any student code (see ``zygote_main``): new mount, pid, network, ipc and uts namespaces, a fresh
/tmp and /dev/shm, a view of the scratch parent that holds its own scratch folder alone, its own
/proc, the rlimits, the submission's uid with no capability left and no_new_privs, and the
policy's environment. So a warm kernel sees exactly what a cold one sees; what it shares with
the other kernels of its worker is the memory image of the trusted modules (copy-on-write; the
address layout too, so ASLR is per worker, not per kernel), and import-time state of those
modules, except the cache and config paths derived from $HOME (Hugging Face's among them), which
each kernel points at its own scratch folder as a cold kernel has them (``zygote_main.rehome``).

The grader learns the kernel's host pid by mapping the namespace pid that the zygote reports
(``NSpid`` in /proc), puts it in the kernel's pids cgroup, then says "go"; from there
KernelSession treats it as it treats a cold kernel's bwrap: CPU of the tree, liveness, kill.

Used where bubblewrap runs as root (the official grading set-up); elsewhere, or when the zygote
will not start or dies, kernels start cold, and the log says so once. Switch: ``[limits]
warm_kernels`` in an assignment (default on) and ``course grade --cold-kernels``.
"""
from __future__ import annotations

import atexit
import contextlib
import json
import os
import select
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import psutil

from graders.sandbox import bwrap

# The trusted modules a kernel finds already imported, in the order the zygote imports them.
PRELOAD = ("torch", "safetensors.torch", "transformers", "transformers.models.llama.modeling_llama", "peft",
           "bitsandbytes", "numpy", "IPython.core.interactiveshell", "ipykernel.ipkernel", "ipykernel.debugger")
CAPS = ("CAP_SYS_ADMIN", "CAP_NET_ADMIN", "CAP_SETUID", "CAP_SETGID", "CAP_SETPCAP")
ANSWER_TIMEOUT_S = 60.0  # a fork answers in milliseconds; a zygote this slow is dropped (cold kernels)
READY_TIMEOUT_S = 300.0  # the imports: ~6 s of CPU, much longer on a loaded 2-core machine
SCRATCH_KEYS = ("HOME", "JUPYTER_RUNTIME_DIR", "IPYTHONDIR", "MPLCONFIGDIR", "TMPDIR")


class ZygoteError(RuntimeError):
    pass


def usable(policy, use_bwrap: bool) -> bool:
    """Warm kernels need bwrap run by root (the namespaces and the uid change happen in the fork);
    GPU kernels start cold (graders/sandbox/gpu.py)."""
    return bool(policy.warm_kernels) and not policy.gpu and use_bwrap and os.geteuid() == 0


class WarmProcess:
    """A forked kernel, seen by KernelSession as it sees a Popen: ``pid`` (on the host), ``poll``,
    ``wait``, ``returncode``. Its parent is the zygote, which reaps it and keeps its status."""

    def __init__(self, zygote: "Zygote", ns_pid: int, pid: int):
        self.zygote, self.ns_pid, self.pid = zygote, ns_pid, pid
        self._process = psutil.Process(pid)
        self.returncode: int | None = None

    def poll(self) -> int | None:
        if self.returncode is not None:
            return self.returncode
        with contextlib.suppress(psutil.Error):
            if self._process.is_running() and self._process.status() != psutil.STATUS_ZOMBIE:
                return None
        status = None
        for _ in range(50):  # the zygote reaps it within a moment of its exit
            status = self.zygote.status(self.ns_pid)
            if status is not None:
                break
            time.sleep(0.01)
        if status is None:
            self.returncode = -9
        elif os.WIFSIGNALED(status):
            self.returncode = -os.WTERMSIG(status)
        else:
            self.returncode = os.WEXITSTATUS(status)
        return self.returncode

    def wait(self, timeout: float | None = None) -> int:
        deadline = None if timeout is None else time.monotonic() + timeout
        while self.poll() is None:
            if deadline is not None and time.monotonic() > deadline:
                raise subprocess.TimeoutExpired("warm kernel", timeout)
            time.sleep(0.02)
        return self.returncode


class Zygote:
    def __init__(self, argv: list[str], env: dict):
        self._lock = threading.Lock()
        self._log = tempfile.TemporaryFile()
        self._proc = subprocess.Popen(argv, cwd="/", env=env, stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                      stderr=self._log, close_fds=True, start_new_session=True)
        try:
            ready = self._read(READY_TIMEOUT_S)
        except (ZygoteError, ValueError):
            self._kill()
            raise
        if "ready" not in ready:
            self._kill()
            raise ZygoteError(f"the zygote did not start: {ready}")
        self.pid = self._host_pid(self._proc.pid, ready["ready"], level=1)

    def log_tail(self) -> str:
        with contextlib.suppress(OSError):
            self._log.seek(0)
            return " | ".join(self._log.read().decode(errors="replace").strip().splitlines()[-3:])
        return ""

    def _read(self, timeout: float = ANSWER_TIMEOUT_S) -> dict:
        line = b""
        deadline = time.monotonic() + timeout
        while not line.endswith(b"\n"):
            if self._proc.poll() is not None:
                raise ZygoteError(f"the zygote exited (status {self._proc.returncode}): {self.log_tail()}")
            if time.monotonic() > deadline:
                raise ZygoteError(f"the zygote did not answer within {timeout:g} s")
            if select.select([self._proc.stdout], [], [], 0.2)[0]:
                chunk = os.read(self._proc.stdout.fileno(), 1)
                if not chunk:
                    continue
                line += chunk
        return json.loads(line)

    def _ask(self, request: dict) -> dict:
        with self._lock:
            if not self.alive():
                raise ZygoteError(f"the zygote is gone: {self.log_tail()}")
            try:
                self._proc.stdin.write(json.dumps(request).encode() + b"\n")
                self._proc.stdin.flush()
            except OSError as err:
                raise ZygoteError(f"the zygote is gone: {err}") from err
            try:
                answer = self._read()
            except ZygoteError:
                self._kill()  # an answer may still come: never read it as the next one's
                raise
        if "error" in answer:
            raise ZygoteError(f"the zygote refused {request.get('op')}: {answer['error']} ({self.log_tail()})")
        return answer

    @staticmethod
    def _host_pid(root: int, ns_pid: int, level: int) -> int:
        """The host pid of the descendant of ``root`` whose pid at namespace depth ``level`` is ``ns_pid``."""
        for _ in range(100):
            with contextlib.suppress(psutil.Error):
                for proc in psutil.Process(root).children(recursive=True):
                    with contextlib.suppress(OSError, ValueError):
                        line = next(x for x in Path(f"/proc/{proc.pid}/status").read_text().splitlines()
                                    if x.startswith("NSpid:"))
                        ids = [int(x) for x in line.split()[1:]]
                        if len(ids) == level + 1 and ids[level] == ns_pid:
                            return proc.pid
            time.sleep(0.01)
        raise ZygoteError(f"no host process for pid {ns_pid} of the zygote's namespace")

    def spawn(self, request: dict, cgroup_procs: str | None) -> WarmProcess:
        """Fork a kernel, put it in ``cgroup_procs``, then let it start."""
        ns_pid = self._ask({"op": "spawn", **request})["pid"]
        pid = self._host_pid(self.pid, ns_pid, level=1)
        if cgroup_procs:
            with open(cgroup_procs, "w") as fh:
                fh.write(str(pid))
        self._ask({"op": "go", "pid": ns_pid})
        return WarmProcess(self, ns_pid, pid)

    def status(self, ns_pid: int) -> int | None:
        with contextlib.suppress(ZygoteError):
            return self._ask({"op": "status", "pid": ns_pid})["status"]
        return -1 << 8  # the zygote is gone, and its children with it

    def alive(self) -> bool:
        return self._proc.poll() is None

    def close(self) -> None:
        with contextlib.suppress(OSError):
            self._proc.stdin.close()  # the zygote kills its children and leaves
        try:
            self._proc.wait(timeout=5)
        except subprocess.TimeoutExpired:
            self._kill()
        self._log.close()

    def _kill(self) -> None:
        with contextlib.suppress(OSError):
            os.killpg(self._proc.pid, 9)
        self._proc.wait()


# --- one zygote per (worker, settings that reach the kernel at import time) ------------------------
_zygotes: dict[tuple, Zygote] = {}
_broken: dict[tuple, str] = {}  # key -> why its kernels start cold


def zygote_env(env: dict) -> dict:
    """The kernel environment less what names one scratch folder: what the zygote imports under."""
    return {**{k: v for k, v in env.items() if k not in SCRATCH_KEYS}, "HOME": "/tmp", "TMPDIR": "/tmp"}


def zygote_argv(parent: Path, policy) -> list[str]:
    source = Path(__file__).with_name("zygote_main.py").read_text()
    return bwrap.wrap([sys.executable, "-P", "-c", source, json.dumps(list(PRELOAD))], parent,
                      list(policy.needed_paths), list(policy.hidden_paths), caps=CAPS)


_said: set[Path] = set()


def _needed_inside(parent: Path, policy) -> str | None:
    """A path a kernel reads (the interpreter's prefixes, the policy's needed paths) that lies
    inside ``parent``; None when all lie elsewhere."""
    from graders.sandbox import bwrap

    for path in [*bwrap.needed_by_interpreter(), *policy.needed_paths]:
        resolved = Path(path).resolve()
        if resolved == parent or parent in resolved.parents:
            return str(path)
    return None


def for_kernel(scratch: Path, policy, env: dict) -> Zygote | None:
    """The zygote for kernels in ``scratch``'s parent under this policy, started on first use.
    None where warm kernels cannot serve this scratch folder (a set-up matter, said once on
    stderr); ``ZygoteError`` with the reason where the zygote will not start or died (said once
    on stderr, raised for every kernel so that each one's fallback is recorded): start it cold.

    Zygotes are told apart by what reaches a kernel: the view (the bwrap command line, where only
    hidden paths inside bound folders appear: the reference and the students of one batch share
    one) and the environment modules are imported under."""
    parent = Path(scratch).resolve().parent
    inside = _needed_inside(parent, policy)
    if inside:
        # The warm view covers the scratch parent with a tmpfs (only the kernel's own scratch is
        # bound back), so a checkout or venv that lives there would vanish from its kernels.
        if parent not in _said:
            _said.add(parent)
            print(f"course: warm kernels unavailable ({inside} lies inside the scratch folder's parent {parent}; "
                  "set TMPDIR elsewhere to use them); kernels start cold", file=sys.stderr)
        return None
    argv = zygote_argv(parent, policy)
    key = (tuple(argv), tuple(sorted(zygote_env(env).items())))
    zygote = _zygotes.get(key)
    if zygote is not None and zygote.alive():
        return zygote
    if zygote is not None:
        _zygotes.pop(key)
        _broken[key] = f"the warm-kernel zygote died ({zygote.log_tail()})"
        print(f"course: {_broken[key]}; kernels start cold from now on", file=sys.stderr)
    if key in _broken:
        raise ZygoteError(_broken[key])
    try:
        _zygotes[key] = Zygote(argv, zygote_env(env))
    except (ZygoteError, OSError) as err:
        _broken[key] = f"warm kernels unavailable ({err})"
        print(f"course: {_broken[key]}; kernels start cold", file=sys.stderr)
        raise ZygoteError(_broken[key]) from err
    return _zygotes[key]


def close_all() -> None:
    while _zygotes:
        _zygotes.popitem()[1].close()


atexit.register(close_all)
