"""A fresh ipykernel in the sandbox, talked to over Unix sockets in its scratch folder.

The kernel has no network (not even the loopback the grader could reach), so the ZeroMQ
channels use the ``ipc`` transport: socket files inside the scratch folder, which both sides see.
We launch the process ourselves (not through a KernelManager) to own its limits, its identity
and the kill of its whole tree.
"""
from __future__ import annotations

import contextlib
import os
import queue
import secrets
import signal
import subprocess
import sys
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

import psutil
from jupyter_client import BlockingKernelClient
from jupyter_client.connect import write_connection_file

from graders.errors import CourseError
from graders.sandbox import bwrap
from graders.sandbox.cgroup import PidsCgroup
from graders.sandbox.limits import hand_over, preexec, reachable_by_others, sandbox_uid
from graders.sandbox.policy import SandboxPolicy

OK, ERROR, TIMEOUT, DIED, MEMORY, NOT_RUN = "ok", "error", "timeout", "died", "memory_limit", "not_run"
INTERRUPT_GRACE_S = 5.0  # after an interrupt, how long a cell may take to stop before the kernel is killed


@dataclass
class CellResult:
    cell: str
    status: str
    stdout: str = ""
    error: str = ""  # "Ename: evalue" and the last traceback line
    elapsed_s: float = 0.0
    truncated: bool = False
    ename: str = ""


@dataclass
class NotebookRun:
    cells: list[CellResult] = field(default_factory=list)
    notebook_timed_out: bool = False
    rerun: bool = False  # run again in a fresh kernel without the cells that stopped the first one

    @property
    def kernel_lost(self) -> bool:
        return any(c.ename in ("died", "killed") for c in self.cells)


class KernelSession:
    def __init__(self, scratch: Path, policy: SandboxPolicy, uid: int | None = None):
        self.scratch = Path(scratch)
        self.policy = policy
        self.isolation = "none"
        self.degraded_reason = ""
        self.uid: int | None = None  # the kernel's own uid when the grader is root; None: the grader's
        self._wanted_uid = uid  # kernels sharing one scratch folder must share one uid
        self.peak_rss_mb = 0.0
        self.start_s = 0.0  # how long the kernel took to answer its first request
        self.cgroup: PidsCgroup | None = None
        self._proc: subprocess.Popen | None = None
        self._client: BlockingKernelClient | None = None
        self._sampler: threading.Thread | None = None
        self._closed = threading.Event()

    # --- life cycle --------------------------------------------------------------------------
    def start(self, timeout: float = 60.0) -> None:
        use_bwrap = self.policy.isolation in ("auto", "bwrap")
        if use_bwrap:
            ok, why = bwrap.available()
            if not ok:
                if self.policy.isolation == "bwrap":
                    raise CourseError(f"isolation 'bwrap' requested but {why}")
                use_bwrap = False
                self.degraded_reason = f"ran with rlimits only: {why}"
                print(f"WARNING: sandbox degraded, {why}; results will carry isolation_degraded", file=sys.stderr)
        else:
            self.degraded_reason = "ran with rlimits only (--isolation none)"
        self.isolation = "bwrap" if use_bwrap else "rlimits-only"
        self.uid = self._wanted_uid if self._wanted_uid is not None else sandbox_uid()
        if self.uid is not None and not use_bwrap:
            # Without bwrap nothing re-binds what an unprivileged uid cannot reach (a pyenv under /root).
            stop = reachable_by_others(Path(sys.executable)) or reachable_by_others(self.scratch)
            if stop:
                self.uid = None
                self.degraded_reason += f"; the kernel runs as root ({stop} is closed to other users)"
        started = time.perf_counter()
        self.cgroup = PidsCgroup(self.policy.max_processes)
        runtime = self.scratch / ".kernel"
        runtime.mkdir(parents=True, exist_ok=True)
        conn_file = runtime / "connection.json"
        write_connection_file(str(conn_file), transport="ipc", ip=str(runtime / "ipc"), key=secrets.token_hex(16).encode())
        hand_over(self.scratch, self.uid)
        argv = [sys.executable, "-m", "ipykernel_launcher", "-f", str(conn_file), "--HistoryManager.enabled=False",
                "--IPKernelApp.parent_handle=0"]
        if use_bwrap:
            argv = bwrap.wrap(argv, self.scratch, list(self.policy.hidden_paths), list(self.policy.needed_paths), self.uid)
        log = open(runtime / "kernel.log", "wb")  # the kernel's own stderr, for a failed start
        self._proc = subprocess.Popen(argv, cwd=self.scratch, env=self._environment(), stdin=subprocess.DEVNULL,
                                      stdout=log, stderr=log, close_fds=True,
                                      preexec_fn=preexec(self.policy, self.cgroup.procs_file, self.uid, setuid=not use_bwrap))
        log.close()
        self._client = BlockingKernelClient(connection_file=str(conn_file))
        self._client.load_connection_file()
        self._client.start_channels()
        try:
            self._client.wait_for_ready(timeout=timeout)
        except RuntimeError as err:
            self.close()
            tail = (runtime / "kernel.log").read_text(errors="replace").strip().splitlines()[-3:]
            raise RuntimeError(f"the sandboxed kernel did not start: {err}: {' | '.join(tail)}") from err
        self.start_s = time.perf_counter() - started
        self._sampler = threading.Thread(target=self._sample_memory, daemon=True)
        self._sampler.start()

    def _environment(self) -> dict:
        keep = {k: os.environ[k] for k in ("PATH", "LANG", "LC_ALL", "TZ", "OPENBLAS_CORETYPE", "OPENBLAS_L2_SIZE")
                if k in os.environ}
        home = str(self.scratch)
        env = {**keep, "HOME": home, "JUPYTER_RUNTIME_DIR": str(self.scratch / ".kernel"),
               "IPYTHONDIR": str(self.scratch / ".kernel" / "ipython"), "MPLCONFIGDIR": str(self.scratch / ".kernel" / "mpl"),
               "MPLBACKEND": "Agg", "PYTHONDONTWRITEBYTECODE": "1", "USER": "student", "LOGNAME": "student", "TMPDIR": "/tmp" if self.isolation == "bwrap" else home}
        # Idle OpenMP threads of kernels kept alive for the checks must not spin on the cores the
        # running kernels need: a passive wait policy, and a thread budget per kernel.
        env.update(OMP_WAIT_POLICY="PASSIVE", KMP_BLOCKTIME="0")
        if self.policy.threads:
            env.update(OMP_NUM_THREADS=str(self.policy.threads), MKL_NUM_THREADS=str(self.policy.threads))
        env.update({k: str(v) for k, v in self.policy.env.items()})
        return env

    def _tree(self) -> list[psutil.Process]:
        if self._proc is None:
            return []
        try:
            root = psutil.Process(self._proc.pid)
            return [root, *root.children(recursive=True)]
        except psutil.Error:
            return []

    def _sample_memory(self) -> None:
        while not self._closed.wait(0.2):
            total = 0
            for proc in self._tree():
                with contextlib.suppress(psutil.Error):
                    total += proc.memory_info().rss
            self.peak_rss_mb = max(self.peak_rss_mb, total / 2**20)

    def alive(self) -> bool:
        return self._proc is not None and self._proc.poll() is None

    def close(self) -> None:
        """Kill the kernel's whole tree; safe to call twice."""
        self._closed.set()
        if self._client is not None:
            with contextlib.suppress(Exception):
                self._client.stop_channels()
        if self._proc is not None:
            procs = self._tree()
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.killpg(self._proc.pid, signal.SIGKILL)
            for proc in procs:
                with contextlib.suppress(psutil.Error):
                    proc.kill()
            with contextlib.suppress(subprocess.TimeoutExpired):
                self._proc.wait(timeout=10)
        if self.cgroup is not None:
            self.cgroup.close()
        self._client = None

    def __enter__(self) -> "KernelSession":
        self.start()
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    # --- execution ---------------------------------------------------------------------------
    def execute(self, code: str, timeout: float, cell: str = "") -> CellResult:
        """Run ``code``; wait at most ``timeout`` seconds, then interrupt, then kill."""
        if not self.alive() or self._client is None:
            return CellResult(cell, DIED, error="the kernel is not running")
        start = time.perf_counter()
        msg_id = self._client.execute(code, store_history=False, allow_stdin=False, stop_on_error=False)
        out: list[str] = []
        size = 0
        truncated = False
        error, ename = "", ""
        status = OK
        deadline = start + timeout
        interrupted_at = None
        while True:
            now = time.perf_counter()
            if interrupted_at is None and now > deadline:
                self._interrupt()
                interrupted_at = now
                status = TIMEOUT
            if interrupted_at is not None and now > interrupted_at + INTERRUPT_GRACE_S:
                self.close()
                return CellResult(cell, TIMEOUT, "".join(out), f"timed out after {timeout:g} s; the kernel was killed",
                                  now - start, truncated, "killed")
            if not self.alive():
                died_status = MEMORY if self._near_memory_limit() else DIED
                return CellResult(cell, died_status, "".join(out), self._death_reason(), now - start, truncated, "died")
            try:
                msg = self._client.get_iopub_msg(timeout=0.2)
            except queue.Empty:
                continue
            if msg.get("parent_header", {}).get("msg_id") != msg_id:
                continue
            kind, content = msg["msg_type"], msg["content"]
            if kind == "stream":
                text = content.get("text", "")
                if size < self.policy.output_cap_bytes:
                    out.append(text[: self.policy.output_cap_bytes - size])
                size += len(text)
                truncated = truncated or size > self.policy.output_cap_bytes
            elif kind == "error":
                ename = content.get("ename", "")
                trace = [line for line in content.get("traceback", []) if line.strip()]
                error = f"{ename}: {content.get('evalue', '')}"[:2000]
                if trace:
                    error += "\n" + _strip_ansi(trace[-1])[:500]
                if status != TIMEOUT:
                    status = MEMORY if ename == "MemoryError" else ERROR
            elif kind == "status" and content.get("execution_state") == "idle":
                break
        if status == TIMEOUT:
            error = f"timed out after {timeout:g} s and was interrupted"
        if truncated:
            out.append(f"\n[output truncated: {size:,} bytes printed, {self.policy.output_cap_bytes:,} kept]\n")
        return CellResult(cell, status, "".join(out), error, time.perf_counter() - start, truncated, ename)

    def _interrupt(self) -> None:
        """Ask ipykernel to interrupt itself (it signals its own process); no signal crosses the
        pid namespace from here."""
        with contextlib.suppress(Exception):
            msg = self._client.session.msg("interrupt_request", content={})
            self._client.control_channel.send(msg)

    def _near_memory_limit(self) -> bool:
        return self.peak_rss_mb >= 0.8 * self.policy.memory_mb

    def _death_reason(self) -> str:
        code = self._proc.returncode if self._proc is not None else None
        if code is not None and code < 0:
            return f"the kernel was killed by signal {signal.Signals(-code).name}"
        return f"the kernel exited (status {code})"

    def run_notebook(self, nb, skip: set[str] | None = None) -> NotebookRun:
        """Execute the code cells in order, going on after errors; a lost kernel leaves the
        remaining cells not run. ``skip`` names cells to leave out (a re-run after a crash)."""
        run = NotebookRun()
        deadline = time.perf_counter() + self.policy.notebook_timeout_s
        for index, cell in enumerate(nb.cells):
            if cell.cell_type != "code":
                continue
            name = cell.metadata.get("nbgrader", {}).get("grade_id") or cell.get("id") or f"cell-{index}"
            if skip and name in skip:
                run.cells.append(CellResult(name, NOT_RUN, error="skipped: it stopped the kernel on the first run"))
                continue
            left = deadline - time.perf_counter()
            if left <= 0 or not self.alive():
                run.notebook_timed_out = run.notebook_timed_out or left <= 0
                run.cells.append(CellResult(name, NOT_RUN, error="not run: the notebook's time or kernel ran out"))
                continue
            run.cells.append(self.execute(cell.source, min(self.policy.cell_timeout_s, left), name))
        return run


def _strip_ansi(text: str) -> str:
    import re

    return re.sub(r"\x1b\[[0-9;]*m", "", text)
