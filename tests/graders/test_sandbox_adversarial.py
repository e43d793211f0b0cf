"""The adversarial corpus against the sandbox alone: each attack ends in a clear status and the
grader (this process) survives it."""
from __future__ import annotations

import os
import resource
import time

import psutil
import pytest

from graders.sandbox import KernelSession, SandboxPolicy, bwrap

from tests.graders.helpers import REPO, survivors

needs_bwrap = pytest.mark.skipif(not bwrap.available()[0], reason=f"bubblewrap cannot run here: {bwrap.available()[1]}")


@pytest.fixture()
def session(kernel_scratch, request):
    kernel = KernelSession(kernel_scratch, SandboxPolicy(**getattr(request, "param", {})))
    kernel.start()
    yield kernel
    kernel.close()


@pytest.fixture(scope="module")
def shared(module_kernel_scratch):
    kernel = KernelSession(module_kernel_scratch,
                           SandboxPolicy(hidden_paths=(str(REPO / "graders"), str(REPO / "results"))))
    kernel.start()
    yield kernel
    kernel.close()


def test_infinite_loop_is_stopped_by_its_cpu_time_and_the_kernel_stays_usable(shared):
    result = shared.execute("while True:\n    pass", timeout=1.5)
    limit = 1.5 * shared.threads()
    assert (result.status, result.limit) == ("timeout", "cpu")
    assert result.error == f"timed out: used {result.cpu_s:.0f} s of CPU time, over its limit of {limit:g} s and was interrupted"
    assert result.cpu_s >= limit
    assert shared.execute("print('still here')", 10).stdout.strip() == "still here"


def test_a_cell_that_waits_is_judged_by_cpu_time_not_by_the_clock(shared):
    """What a loaded host does to honest code (it gets less than a core) must not fail it."""
    result = shared.execute("import time\ntime.sleep(3)\nprint('done')", timeout=1.0)
    assert (result.status, result.stdout.strip()) == ("ok", "done") and result.elapsed_s >= 3


@pytest.mark.parametrize("session", [{"wall_guard_factor": 1.0, "wall_guard_extra_s": 0.5}], indirect=True)
def test_a_hang_deaf_to_interrupts_is_stopped_by_the_wall_clock_guard(session, monkeypatch):
    monkeypatch.setattr("graders.sandbox.kernel.INTERRUPT_GRACE_S", 1.0)
    code = "import signal, time\nsignal.signal(signal.SIGINT, signal.SIG_IGN)\nwhile True:\n    time.sleep(0.05)"
    result = session.execute(code, timeout=1.0)
    assert (result.status, result.limit) == ("timeout", "wall")
    assert result.error == ("timed out: still running after 1.5 s of wall-clock time (the guard against hangs); "
                            "the kernel was killed")
    assert not session.alive()


def test_os_exit_is_reported_as_died(session):
    result = session.execute("import os\nos._exit(1)", 10)
    assert (result.status, result.error) == ("died", "the kernel exited (status 1)")
    assert session.execute("1", 5).status == "died"


@pytest.mark.parametrize("session", [{"memory_mb": 2048}], indirect=True)
def test_memory_bomb_is_stopped_by_the_address_space_limit(session):
    result = session.execute("x = bytearray(50 * 2**30)", 30)
    assert (result.status, result.ename) == ("memory_limit", "MemoryError")
    grow = session.execute("chunks = []\nwhile True:\n    chunks.append(bytearray(2**26))", 60)
    assert grow.status == "memory_limit"
    assert psutil.virtual_memory().available > 2**30  # the machine kept its memory


@pytest.mark.parametrize("session", [{"max_processes": 32}], indirect=True)
def test_fork_bomb_is_bounded_flagged_and_killed(session):
    code = ("import os, time\nfailed = 0\nfor _ in range(400):\n    try:\n        if os.fork() == 0:\n"
            "            time.sleep(600)\n            os._exit(0)\n    except (BlockingIOError, OSError):\n"
            "        failed += 1\nprint('refused', failed)")
    result = session.execute(code, 60)
    assert result.status == "ok" and int(result.stdout.split()[-1]) > 300
    tree = [p.pid for p in psutil.Process(session._proc.pid).children(recursive=True)]
    assert len(tree) <= 40
    if session.cgroup.path is not None:
        assert session.cgroup.hit_limit()
    session.close()
    assert survivors(tree) == []


def test_flooded_output_is_capped_and_counted(shared):
    code = "import sys, time\nfor _ in range(8):\n    sys.stdout.write('x' * 2**20)\n    sys.stdout.flush()\n    time.sleep(0.3)"
    result = shared.execute(code, 120)
    assert result.status == "ok" and result.truncated
    assert result.stdout.startswith("x" * shared.policy.output_cap_bytes)
    assert len(result.stdout) < shared.policy.output_cap_bytes + 200
    assert result.stdout.rstrip().endswith(f"[output truncated: 8,388,608 bytes printed, {shared.policy.output_cap_bytes:,} kept]")


def test_a_gigabyte_of_output_keeps_grader_memory_bounded(shared):
    """ipykernel sends such output in iopub messages of hundreds of MB; ZeroMQ drops any over the
    cap unread, the cell ends on its execute_reply, and the channel is rebuilt for the next one."""
    before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    result = shared.execute("import sys\nchunk = 'x' * 2**20\nfor _ in range(1024):\n    sys.stdout.write(chunk)", 120)
    assert result.status == "ok" and result.truncated
    assert len(result.stdout) < shared.policy.output_cap_bytes + 300
    assert "messages over the size cap were dropped unread" in result.stdout
    assert resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - before < 300 * 1024  # KiB: grader stays bounded
    assert shared.execute("print('after the flood')", 10).stdout == "after the flood\n"


def test_an_oversize_reply_fails_the_cell_not_the_kernel(shared):
    result = shared.execute("raise ValueError('x' * (40 * 2**20))", 60)
    assert (result.status, result.ename) == ("error", "OversizeReply") and result.elapsed_s < 30
    assert shared.execute("print('still here')", 10).stdout == "still here\n"


@needs_bwrap
def test_network_is_unreachable(shared):
    result = shared.execute("import socket\nsocket.create_connection(('1.1.1.1', 80), timeout=3)", 20)
    assert result.status == "error" and "Network is unreachable" in result.error


@needs_bwrap
def test_instructor_tree_is_not_in_the_kernels_view(shared):
    result = shared.execute(f"import os\nprint(os.path.exists({str(REPO / 'graders')!r}))", 10)
    assert result.stdout.strip() == "False"


@needs_bwrap
def test_root_only_files_are_closed_to_the_kernel(shared):
    if os.geteuid() != 0:
        pytest.skip("the kernel keeps the grader's uid when the grader is not root")
    result = shared.execute("open('/etc/shadow').read()", 10)
    assert result.status == "error" and "Permission denied: '/etc/shadow'" in result.error


@needs_bwrap
def test_writes_outside_scratch_and_fake_results_fail(shared):
    outside = shared.execute("open('/var/tmp/planted', 'w').write('x')", 10)
    assert outside.status == "error" and ("Read-only file system" in outside.error or "No such file" in outside.error)
    fake = REPO / "results" / "00-warmup" / "mallory" / "result.json"
    forged = shared.execute(f"import os\nos.makedirs({str(fake.parent)!r}, exist_ok=True)\n"
                            f"open({str(fake)!r}, 'w').write('{{\"score\": 100}}')", 10)
    assert not fake.exists()  # whatever the kernel saw, nothing reached the real results folder
    assert shared.execute("open('mine.txt', 'w').write('ok')", 10).status == "ok"


def test_rlimits_only_fallback_says_it_is_degraded(kernel_scratch):
    with KernelSession(kernel_scratch, SandboxPolicy(isolation="none")) as kernel:
        assert kernel.isolation == "rlimits-only" and kernel.degraded_reason.startswith("ran with rlimits only")
        assert kernel.execute("print(1 + 1)", 10).stdout.strip() == "2"


def test_close_removes_the_whole_tree_and_records_peak_memory(kernel_scratch):
    kernel = KernelSession(kernel_scratch, SandboxPolicy())
    kernel.start()
    kernel.execute("import subprocess\nchildren = [subprocess.Popen(['sleep', '600']) for _ in range(3)]\n"
                   "x = bytearray(200 * 2**20)", 30)
    time.sleep(0.5)
    tree = [kernel._proc.pid, *[p.pid for p in psutil.Process(kernel._proc.pid).children(recursive=True)]]
    sleepers = [p for p in tree if psutil.Process(p).name() == "sleep"]
    assert kernel.peak_rss_mb > 200
    kernel.close()
    kernel.close()  # twice is fine
    assert len(sleepers) == 3  # with bwrap the tree also holds bwrap itself: count what the kernel started
    assert survivors(tree) == []
