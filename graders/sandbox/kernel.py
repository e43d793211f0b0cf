"""A fresh ipykernel in the sandbox, talked to over Unix sockets in its scratch folder.

The kernel has no network (not even the loopback the grader could reach), so the ZeroMQ
channels use the ``ipc`` transport: socket files inside the scratch folder, which both sides see.
We launch the process ourselves (not through a KernelManager) to own its limits, its identity
and the kill of its whole tree; so liveness is judged by that process, never by a heartbeat
timer (a kernel slow to start on a loaded machine is not a dead one).

Time limits judge what the student's code can control. A cell's limit is CPU time of the
kernel's whole process tree (``timeout`` seconds per thread the kernel was given), so a loaded
grading host does not fail honest work; wall-clock time is only a generous guard against hangs
(sleeping, waiting on a lock). The result says which of the two fired.
"""
from __future__ import annotations

import contextlib
import json
import os
import queue
import re
import secrets
import signal
import subprocess
import sys
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

import psutil
import zmq
from jupyter_client import BlockingKernelClient
from jupyter_client.connect import write_connection_file

from graders.errors import CourseError
from graders.sandbox import bwrap, gpu, zygote
from graders.sandbox.cgroup import PidsCgroup
from graders.sandbox.interpreter import kernel_python
from graders.sandbox.limits import hand_over, preexec, rlimits, sandbox_uid
from graders.sandbox.policy import SandboxPolicy

OK, ERROR, TIMEOUT, DIED, MEMORY, NOT_RUN = "ok", "error", "timeout", "died", "memory_limit", "not_run"
INTERRUPT_GRACE_S = 5.0  # after an interrupt, how long a cell may take to stop before the kernel is killed
START_TIMEOUT_S = 120.0  # a kernel that has not answered kernel_info by then is restarted once
MAX_MESSAGE_BYTES = 16 * 2**20  # a larger iopub message (a flood of output) is dropped by ZeroMQ, unread
CPU_SAMPLE_S = 0.25
WATCHED = ("iopub", "shell")


def cpu_message(used: float, limit: float) -> str:
    return f"used {used:.0f} s of CPU time, over its limit of {limit:g} s"


def wall_message(seconds: float) -> str:
    return f"still running after {seconds:g} s of wall-clock time (the guard against hangs)"


class KernelStartError(RuntimeError):
    pass


@dataclass
class CellResult:
    cell: str
    status: str
    stdout: str = ""
    error: str = ""  # "Ename: evalue" and the last traceback line
    elapsed_s: float = 0.0
    truncated: bool = False
    ename: str = ""
    cpu_s: float = 0.0
    limit: str = ""  # which limit stopped it: "cpu" or "wall"


@dataclass
class NotebookRun:
    cells: list[CellResult] = field(default_factory=list)
    notebook_timed_out: bool = False
    rerun: bool = False  # run again in a fresh kernel without the cells that stopped the first one

    @property
    def kernel_lost(self) -> bool:
        return any(c.ename in ("died", "killed") for c in self.cells)


def choose_isolation(policy: SandboxPolicy) -> tuple[bool, str]:
    """(use bwrap, why degraded): bwrap where it runs unless told otherwise. Prints nothing: the
    batch says it once (``graders.engine.batch``)."""
    if policy.isolation == "none":
        return False, "ran with rlimits only (--isolation none)"
    ok, why = bwrap.available()
    if ok:
        return True, ""
    if policy.isolation == "bwrap":
        raise CourseError(f"isolation 'bwrap' requested but {why}")
    return False, f"ran with rlimits only: {why}"


class KernelSession:
    def __init__(self, scratch: Path, policy: SandboxPolicy, uid: int | None = None):
        self.scratch = Path(scratch)
        self.policy = policy
        self.isolation = "none"
        self.degraded_reason = ""
        self.uid: int | None = None  # the kernel's own uid when the grader is root; None: the grader's
        self._wanted_uid = uid  # kernels sharing one scratch folder must share one uid
        self.peak_rss_mb = 0.0
        self.memory_killed = False  # a GPU kernel stopped by the sampler at its memory limit
        self.start_s = 0.0  # how long the kernel took to answer its first request
        self.start_attempts = 0  # 2 when the first start failed and a second one worked
        self.warm = False  # forked from the worker's zygote (graders/sandbox/zygote.py), not started cold
        self.cold_reason = ""  # why a kernel meant to be warm started cold (a broken zygote, a failed fork or start)
        self.slow_start = False  # a cold start gave no answer in time and was tried again
        self.cgroup: PidsCgroup | None = None
        self.connection: dict = {}  # the kernel's connection info (ipc sockets in the scratch folder, key)
        self._proc: subprocess.Popen | None = None
        self._client: BlockingKernelClient | None = None
        self._context: zmq.Context | None = None
        self._monitors: dict = {}
        self._broken: set[str] = set()  # channels ZeroMQ cut on an oversize message (it does not reconnect)
        self._sampler: threading.Thread | None = None
        self._closed = threading.Event()

    # --- life cycle --------------------------------------------------------------------------
    def start(self, timeout: float = START_TIMEOUT_S) -> None:
        use_bwrap, self.degraded_reason = choose_isolation(self.policy)
        self.isolation = "bwrap" if use_bwrap else "rlimits-only"
        self.uid = self._wanted_uid if self._wanted_uid is not None else sandbox_uid()
        started = time.perf_counter()
        warm = zygote.usable(self.policy, use_bwrap)
        self.cold_reason, self.slow_start = "", False
        for attempt in (1, 2):
            self.start_attempts = attempt
            try:
                self._launch(use_bwrap, warm)
                self._wait_ready(timeout)
                break
            except KernelStartError as err:
                self._teardown()
                if self.warm:
                    self.cold_reason = f"the warm kernel did not start ({err})"
                else:
                    self.slow_start = True
                warm = False  # a second try is always cold: a broken zygote never costs a grade
                if attempt == 2:
                    self.close()
                    raise RuntimeError(f"the sandboxed kernel did not start (tried twice): {err}") from err
        self.start_s = time.perf_counter() - started
        self._closed.clear()
        self._sampler = threading.Thread(target=self._sample_memory, daemon=True)
        self._sampler.start()

    def _launch(self, use_bwrap: bool, warm: bool = False) -> None:
        self.cgroup = PidsCgroup(self.policy.max_processes)
        runtime = self.scratch / ".kernel"
        runtime.mkdir(parents=True, exist_ok=True)
        conn_file = runtime / "connection.json"
        with contextlib.suppress(FileNotFoundError):
            conn_file.unlink()
        write_connection_file(str(conn_file), transport="ipc", ip=str(runtime / f"ipc-{secrets.token_hex(4)}"),
                              key=secrets.token_hex(16).encode())
        self.connection = json.loads(conn_file.read_text())  # the next kernel in this scratch rewrites the file
        (runtime / "kernel.log").write_bytes(b"")  # the kernel's own stderr, for a failed start
        hand_over(self.scratch, self.uid)
        args = ["-f", str(conn_file), "--HistoryManager.enabled=False", "--IPKernelApp.parent_handle=0"]
        self.warm = warm and self._spawn_warm(args)
        if not self.warm:
            self._spawn_cold(use_bwrap, args)
        self._connect()

    def _spawn_warm(self, args: list[str]) -> bool:
        """Fork the kernel from this worker's zygote; False (start it cold) where there is none."""
        env = self._environment()
        try:
            source = zygote.for_kernel(self.scratch, self.policy, env)
        except zygote.ZygoteError as err:
            self.cold_reason = str(err)
            return False
        if source is None:  # warm kernels cannot serve this scratch folder (said once); no fallback
            return False
        request = {"scratch": str(self.scratch.resolve()), "uid": self.uid, "env": env, "argv": args,
                   "log": str(self.scratch.resolve() / ".kernel" / "kernel.log"), "threads": self.policy.threads,
                   "limits": rlimits(self.policy, self.uid)}
        try:
            self._proc = source.spawn(request, self.cgroup.procs_file)
        except zygote.ZygoteError as err:
            print(f"course: a warm kernel could not be forked ({err}); starting it cold", file=sys.stderr)
            self.cold_reason = f"a warm kernel could not be forked ({err})"
            return False
        return True

    def _spawn_cold(self, use_bwrap: bool, args: list[str]) -> None:
        python, extra_env = sys.executable, {}
        if not use_bwrap:
            python, extra_env = kernel_python(self.uid, [*self.policy.needed_paths, str(self.scratch.parent)])
        env = self._environment()
        if "LD_LIBRARY_PATH" in extra_env:  # the mirrored interpreter's libraries, then the driver's
            extra_env["LD_LIBRARY_PATH"] = gpu.join_library_path(extra_env["LD_LIBRARY_PATH"], env.get("LD_LIBRARY_PATH"))
        argv = [python, "-m", "ipykernel_launcher", *args]
        if use_bwrap:
            argv = bwrap.wrap(argv, self.scratch, list(self.policy.needed_paths), list(self.policy.hidden_paths), self.uid)
        with open(self.scratch / ".kernel" / "kernel.log", "ab") as log:
            self._proc = subprocess.Popen(argv, cwd=self.scratch, env={**env, **extra_env},
                                          stdin=subprocess.DEVNULL, stdout=log, stderr=log, close_fds=True,
                                          preexec_fn=preexec(self.policy, self.cgroup.procs_file, self.uid,
                                                             setuid=not use_bwrap))

    def _connect(self) -> None:
        # Our own ZeroMQ context: every socket refuses messages over MAX_MESSAGE_BYTES, so a kernel
        # that floods its output cannot make this process decode hundreds of MB at once.
        self._context = zmq.Context()
        self._context.setsockopt(zmq.MAXMSGSIZE, MAX_MESSAGE_BYTES)
        self._client = BlockingKernelClient(context=self._context)
        self._client.load_connection_info(self.connection)
        self._client.start_channels(hb=False)
        self._watch()

    def _watch(self, channels=WATCHED) -> None:
        for name in channels:
            socket = getattr(self._client, f"{name}_channel").socket
            self._monitors[name] = socket.get_monitor_socket(zmq.EVENT_DISCONNECTED)

    def _reconnect(self) -> None:
        """Fresh sockets for the channels ZeroMQ cut, ready before they are used."""
        for name in self._broken:
            with contextlib.suppress(Exception):
                self._monitors.pop(name).close(linger=0)
            getattr(self._client, f"{name}_channel").stop()
            setattr(self._client, f"_{name}_channel", None)
            getattr(self._client, f"{name}_channel").start()
            self._watch([name])
        self._broken = set()
        try:
            self._wait_ready(30.0)
        except KernelStartError:
            pass  # the kernel is busy or gone; the next execute finds out

    def _kernel_log_tail(self) -> str:
        with contextlib.suppress(OSError):
            tail = (self.scratch / ".kernel" / "kernel.log").read_text(errors="replace").strip().splitlines()[-3:]
            return " | ".join(tail)
        return ""

    def _wait_ready(self, timeout: float) -> None:
        """kernel_info answered on shell and iopub proven subscribed (so no output is missed): its
        status for that request seen, or the ``iopub_welcome`` ipykernel sends a new subscriber (the
        status can go out before the subscription is made, which would cost a second request); while
        the process lives, up to ``timeout`` seconds, however loaded the machine is."""
        deadline = time.perf_counter() + timeout

        def await_reply(get, msg_id: str, window: float, welcome: bool = False) -> bool:
            until = min(deadline, time.perf_counter() + window)
            while time.perf_counter() < until:
                if self._proc.poll() is not None:
                    raise KernelStartError(f"the kernel exited with status {self._proc.returncode} while starting: "
                                           f"{self._kernel_log_tail()}")
                try:
                    msg = get(timeout=0.2)
                except queue.Empty:
                    continue
                if msg.get("parent_header", {}).get("msg_id") == msg_id:
                    return True
                if welcome and msg.get("header", {}).get("msg_type") == "iopub_welcome":
                    return True
            return False

        while time.perf_counter() < deadline:
            msg_id = self._client.kernel_info()
            if not await_reply(self._client.get_shell_msg, msg_id, 5.0):
                continue
            if await_reply(self._client.get_iopub_msg, msg_id, 1.0, welcome=True):
                while True:  # drop the rest of the start-up chatter
                    try:
                        self._client.get_iopub_msg(timeout=0.05)
                    except queue.Empty:
                        return
        raise KernelStartError(f"no answer to kernel_info within {timeout:g} s: {self._kernel_log_tail()}")

    def _environment(self) -> dict:
        keep = {k: os.environ[k] for k in ("PATH", "LANG", "LC_ALL", "TZ", "OPENBLAS_CORETYPE", "OPENBLAS_L2_SIZE")
                if k in os.environ}
        home = str(self.scratch)
        env = {**keep, "HOME": home, "JUPYTER_RUNTIME_DIR": str(self.scratch / ".kernel"),
               "IPYTHONDIR": str(self.scratch / ".kernel" / "ipython"), "MPLCONFIGDIR": str(self.scratch / ".kernel" / "mpl"),
               "MPLBACKEND": "Agg", "PYTHONDONTWRITEBYTECODE": "1", "USER": "student", "LOGNAME": "student",
               "TMPDIR": "/tmp" if self.isolation == "bwrap" else home}
        # Idle OpenMP threads of kernels kept alive for the checks must not spin on the cores the
        # running kernels need: a passive wait policy, and a thread budget per kernel.
        env.update(OMP_WAIT_POLICY="PASSIVE", KMP_BLOCKTIME="0")
        if self.policy.threads:
            env.update(OMP_NUM_THREADS=str(self.policy.threads), MKL_NUM_THREADS=str(self.policy.threads))
        if self.policy.gpu:
            env.update(gpu.environment())
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

    def cpu_seconds(self) -> float:
        """CPU time of the whole tree: each live process's own and that of children it reaped."""
        total = 0.0
        for proc in self._tree():
            with contextlib.suppress(psutil.Error):
                t = proc.cpu_times()
                total += t.user + t.system + t.children_user + t.children_system
        return total

    def _sample_memory(self) -> None:
        while not self._closed.wait(0.2):
            total = private = 0
            for proc in self._tree():
                with contextlib.suppress(psutil.Error):
                    info = proc.memory_info()
                    total += info.rss
                    private += info.rss - info.shared
            self.peak_rss_mb = max(self.peak_rss_mb, total / 2**20)
            if self.policy.gpu and private > self.policy.memory_mb * 2**20 and self._proc is not None:
                # No RLIMIT_AS binds a GPU kernel (graders/sandbox/gpu.py): the limit is kept here,
                # on private memory (a checkpoint mapped from disk is file-backed, not the kernel's).
                self.memory_killed = True
                with contextlib.suppress(ProcessLookupError, PermissionError):
                    os.killpg(self._proc.pid, signal.SIGKILL)

    def alive(self) -> bool:
        return self._proc is not None and self._proc.poll() is None

    def _teardown(self) -> None:
        """Kill the tree and free the client, the sockets and the cgroup."""
        self._closed.set()
        self._disconnect()
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

    def _disconnect(self) -> None:
        """Close the monitors, the client's sockets and our ZeroMQ context."""
        for monitor in self._monitors.values():
            with contextlib.suppress(Exception):
                monitor.close(linger=0)
        self._monitors = {}
        if self._client is not None:
            with contextlib.suppress(Exception):
                self._client.stop_channels()
        if self._context is not None:
            with contextlib.suppress(Exception):
                self._context.destroy(linger=0)
        self._client = self._context = None

    def close(self) -> None:
        """Kill the kernel's whole tree; safe to call twice."""
        self._teardown()

    def __enter__(self) -> "KernelSession":
        self.start()
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    # --- execution ---------------------------------------------------------------------------
    def threads(self) -> int:
        return self.policy.threads or os.cpu_count() or 1

    def execute(self, code: str, timeout: float, cell: str = "") -> CellResult:
        """Run ``code``. It may use ``timeout`` seconds of CPU per thread the kernel was given;
        past that, or past the wall-clock guard, it is interrupted, then killed."""
        if not self.alive() or self._client is None:
            return CellResult(cell, DIED, error="the kernel is not running")
        if self._broken:
            self._reconnect()
        run = _CellRun(self, cell, timeout)
        return run.wait(self._client.execute(code, store_history=False, allow_stdin=False, stop_on_error=False))

    def _interrupt(self) -> None:
        """Ask ipykernel to interrupt itself (it signals its own process); no signal crosses the
        pid namespace from here."""
        with contextlib.suppress(Exception):
            msg = self._client.session.msg("interrupt_request", content={})
            self._client.control_channel.send(msg)

    def _near_memory_limit(self) -> bool:
        return self.memory_killed or self.peak_rss_mb >= 0.8 * self.policy.memory_mb

    def _death_reason(self) -> str:
        code = self._proc.returncode if self._proc is not None else None
        if code is not None and code < 0:
            return f"the kernel was killed by signal {signal.Signals(-code).name}"
        return f"the kernel exited (status {code})"

    def _dropped_messages(self) -> set[str]:
        """The channels whose connection ZeroMQ cut since the last look (an oversize message)."""
        dropped = set()
        for name, monitor in self._monitors.items():
            with contextlib.suppress(Exception):
                while monitor.poll(0):
                    monitor.recv_multipart()
                    dropped.add(name)
        self._broken |= dropped
        return dropped

    def run_notebook(self, nb, skip: set[str] | None = None) -> NotebookRun:
        """Execute the code cells in order, going on after errors; a lost kernel leaves the
        remaining cells not run. ``skip`` names cells to leave out (a re-run after a crash).
        The notebook may use ``notebook_timeout_s`` of CPU per thread in all; its wall-clock
        guard is the policy's multiple of that."""
        run = NotebookRun()
        budget = self.policy.notebook_timeout_s
        wall_end = time.perf_counter() + self.policy.wall_guard(budget)
        for index, cell in enumerate(nb.cells):
            if cell.cell_type != "code":
                continue
            name = cell.metadata.get("nbgrader", {}).get("grade_id") or cell.get("id") or f"cell-{index}"
            if skip and name in skip:
                run.cells.append(CellResult(name, NOT_RUN, error="skipped: it stopped the kernel on the first run"))
                continue
            if budget <= 0 or time.perf_counter() > wall_end or not self.alive():
                run.notebook_timed_out = run.notebook_timed_out or self.alive()
                run.cells.append(CellResult(name, NOT_RUN, error="not run: the notebook's time or kernel ran out"))
                continue
            result = self.execute(cell.source, min(self.policy.cell_timeout_s, budget), name)
            budget -= result.cpu_s / self.threads()
            run.cells.append(result)
        return run


class _CellRun:
    """Collect one execution's output and outcome from iopub and shell, under both limits."""

    def __init__(self, session: KernelSession, cell: str, timeout: float):
        self.s = session
        self.cell = cell
        self.timeout = timeout
        self.cpu_limit = timeout * session.threads()
        self.wall_guard = session.policy.wall_guard(timeout)
        self.cpu0 = session.cpu_seconds()
        self.cpu_used = 0.0
        self.out: list[str] = []
        self.size = 0
        self.truncated = self.dropped = False
        self.error = self.ename = ""
        self.status = OK
        self.limit = ""

    def _cpu(self) -> float:
        self.cpu_used = max(self.cpu_used, self.s.cpu_seconds() - self.cpu0)
        return self.cpu_used

    def _result(self, status: str, error: str, start: float, ename: str | None = None) -> CellResult:
        if self.dropped:
            self.truncated = True
        if self.truncated:
            cap = self.s.policy.output_cap_bytes
            lost = "; messages over the size cap were dropped unread" if self.dropped else ""
            self.out.append(f"\n[output truncated: {'at least ' if self.dropped else ''}{self.size:,} bytes printed, "
                            f"{cap:,} kept{lost}]\n")
        self._cpu()
        return CellResult(self.cell, status, "".join(self.out), error, time.perf_counter() - start, self.truncated,
                          self.ename if ename is None else ename, round(self.cpu_used, 2), self.limit)

    def _stream(self, text: str) -> None:
        cap = self.s.policy.output_cap_bytes
        if self.size < cap:
            self.out.append(text[: cap - self.size])
        self.size += len(text)
        self.truncated = self.truncated or self.size > cap

    def _error(self, content: dict) -> None:
        self.ename = content.get("ename", "")
        trace = [line for line in content.get("traceback", []) if line.strip()]
        self.error = f"{self.ename}: {content.get('evalue', '')}"[:2000]
        if trace:
            self.error += "\n" + _strip_ansi(trace[-1])[:500]
        if self.status != TIMEOUT:
            self.status = MEMORY if self.ename == "MemoryError" else ERROR

    def wait(self, msg_id: str) -> CellResult:
        s, client = self.s, self.s._client
        start = time.perf_counter()
        interrupted_at = None
        next_cpu = start
        replied_at = None
        while True:
            now = time.perf_counter()
            if interrupted_at is None:
                if now >= next_cpu:
                    next_cpu = now + CPU_SAMPLE_S
                    if self._cpu() > self.cpu_limit:
                        self.limit = "cpu"
                if not self.limit and now - start > self.wall_guard:
                    self.limit = "wall"
                if self.limit:
                    s._interrupt()
                    interrupted_at, self.status = now, TIMEOUT
            why = cpu_message(self.cpu_used, self.cpu_limit) if self.limit == "cpu" else wall_message(self.wall_guard)
            if interrupted_at is not None and now > interrupted_at + INTERRUPT_GRACE_S:
                s.close()
                return self._result(TIMEOUT, f"timed out: {why}; the kernel was killed", start, "killed")
            if not s.alive():
                return self._result(MEMORY if s._near_memory_limit() else DIED, s._death_reason(), start, "died")
            dropped = s._dropped_messages()
            if dropped:  # a kernel that dies closes its sockets too: that is not an oversize message
                with contextlib.suppress(subprocess.TimeoutExpired):
                    s._proc.wait(timeout=1.0)
                if not s.alive():
                    continue
            self.dropped = self.dropped or "iopub" in dropped
            if "shell" in dropped:  # the reply itself was oversize: the cell is over, its answer lost
                self.status, self.ename = ERROR, self.ename or "OversizeReply"
                self.error = self.error or f"the kernel's reply was over {MAX_MESSAGE_BYTES // 2**20} MiB and was dropped unread"
                break
            with contextlib.suppress(queue.Empty):
                reply = client.get_shell_msg(timeout=0)
                if reply.get("parent_header", {}).get("msg_id") == msg_id:
                    replied_at = replied_at or now
                    content = reply.get("content", {})
                    if content.get("status") == "error" and not self.ename:
                        self._error(content)
            if replied_at is not None and now - replied_at > 1.0:
                break  # the reply came but the idle status was lost (a dropped flood): done anyway
            try:
                msg = client.get_iopub_msg(timeout=0.1)
            except queue.Empty:
                continue
            if msg.get("parent_header", {}).get("msg_id") != msg_id:
                continue
            kind, content = msg["msg_type"], msg["content"]
            if kind == "stream":
                self._stream(content.get("text", ""))
            elif kind == "error":
                self._error(content)
            elif kind == "status" and content.get("execution_state") == "idle":
                break
        if self.status == TIMEOUT:
            self.error = f"timed out: {why} and was interrupted"
        return self._result(self.status, self.error, start)


def _strip_ansi(text: str) -> str:
    return re.sub(r"\x1b\[[0-9;]*m", "", text)
