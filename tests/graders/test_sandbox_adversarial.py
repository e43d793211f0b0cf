"""The adversarial corpus against the sandbox alone: each attack ends in a clear status and the
grader (this process) survives it."""
from __future__ import annotations

import os
import resource
import time

import psutil
import pytest

from graders.sandbox import KernelSession, SandboxPolicy, bwrap

from tests.graders.helpers import REPO

needs_bwrap = pytest.mark.skipif(not bwrap.available()[0], reason=f"bubblewrap cannot run here: {bwrap.available()[1]}")


@pytest.fixture()
def session(tmp_path, request):
    kernel = KernelSession(tmp_path, SandboxPolicy(**getattr(request, "param", {})))
    kernel.start()
    yield kernel
    kernel.close()


@pytest.fixture(scope="module")
def shared(tmp_path_factory):
    kernel = KernelSession(tmp_path_factory.mktemp("scratch"),
                           SandboxPolicy(hidden_paths=(str(REPO / "graders"), str(REPO / "results"))))
    kernel.start()
    yield kernel
    kernel.close()


def test_infinite_loop_times_out_and_the_kernel_stays_usable(shared):
    result = shared.execute("while True:\n    pass", timeout=1.5)
    assert result.status == "timeout" and result.error == "timed out after 1.5 s and was interrupted"
    assert shared.execute("print('still here')", 10).stdout.strip() == "still here"


def test_a_loop_deaf_to_interrupts_gets_the_kernel_killed(session, monkeypatch):
    monkeypatch.setattr("graders.sandbox.kernel.INTERRUPT_GRACE_S", 1.0)
    code = "import signal, time\nsignal.signal(signal.SIGINT, signal.SIG_IGN)\nwhile True:\n    time.sleep(0.05)"
    result = session.execute(code, timeout=1.0)
    assert result.status == "timeout" and result.error == "timed out after 1 s; the kernel was killed"
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
    time.sleep(0.2)
    assert not [pid for pid in tree if psutil.pid_exists(pid) and psutil.Process(pid).status() != "zombie"]


def test_flooded_output_is_capped(shared):
    result = shared.execute("import sys\nchunk = 'x' * 2**20\nfor _ in range(64):\n    sys.stdout.write(chunk)", 120)
    assert result.status == "ok" and result.truncated
    assert len(result.stdout) < shared.policy.output_cap_bytes + 200
    assert result.stdout.rstrip().endswith(f"[output truncated: 67,108,864 bytes printed, {shared.policy.output_cap_bytes:,} kept]")


@pytest.mark.xfail(strict=True, reason="known gap: ipykernel batches stdout into iopub messages of hundreds of MB that "
                   "jupyter_client decodes whole, so the grader peaks near 3x the printed size; fix: ZMQ_MAXMSGSIZE "
                   "on the iopub socket and completion taken from execute_reply")
def test_a_gigabyte_of_output_keeps_grader_memory_bounded(shared):
    before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    result = shared.execute("import sys\nchunk = 'x' * 2**20\nfor _ in range(1024):\n    sys.stdout.write(chunk)", 120)
    assert result.status == "ok" and result.truncated
    assert len(result.stdout) < shared.policy.output_cap_bytes + 200
    assert result.stdout.rstrip().endswith(f"[output truncated: 1,073,741,824 bytes printed, {shared.policy.output_cap_bytes:,} kept]")
    assert resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - before < 300 * 1024  # KiB: grader stays bounded


@needs_bwrap
def test_network_is_unreachable(shared):
    result = shared.execute("import socket\nsocket.create_connection(('1.1.1.1', 80), timeout=3)", 20)
    assert result.status == "error" and "Network is unreachable" in result.error


@needs_bwrap
def test_hidden_instructor_tree_reads_as_empty(shared):
    result = shared.execute(f"import os\nprint(os.listdir({str(REPO / 'graders')!r}))", 10)
    assert result.stdout.strip() == "[]"


@needs_bwrap
def test_root_only_files_are_closed_to_the_kernel(shared):
    if os.geteuid() != 0:
        pytest.skip("the kernel keeps the grader's uid when the grader is not root")
    result = shared.execute("open('/etc/shadow').read()", 10)
    assert result.status == "error" and "Permission denied: '/etc/shadow'" in result.error


@needs_bwrap
def test_writes_outside_scratch_and_fake_results_fail(shared):
    outside = shared.execute("open('/var/tmp/planted', 'w').write('x')", 10)
    assert outside.status == "error" and "Read-only file system" in outside.error
    fake = REPO / "results" / "00-warmup" / "mallory" / "result.json"
    forged = shared.execute(f"import os\nos.makedirs({str(fake.parent)!r}, exist_ok=True)\n"
                            f"open({str(fake)!r}, 'w').write('{{\"score\": 100}}')", 10)
    assert not fake.exists()  # whatever the kernel saw, nothing reached the real results folder
    assert shared.execute("open('mine.txt', 'w').write('ok')", 10).status == "ok"


def test_rlimits_only_fallback_says_it_is_degraded(tmp_path):
    with KernelSession(tmp_path, SandboxPolicy(isolation="none")) as kernel:
        assert kernel.isolation == "rlimits-only" and kernel.degraded_reason.startswith("ran with rlimits only")
        assert kernel.execute("print(1 + 1)", 10).stdout.strip() == "2"


def test_close_removes_the_whole_tree_and_records_peak_memory(tmp_path):
    kernel = KernelSession(tmp_path, SandboxPolicy())
    kernel.start()
    kernel.execute("import subprocess\nchildren = [subprocess.Popen(['sleep', '600']) for _ in range(3)]\n"
                   "x = bytearray(200 * 2**20)", 30)
    time.sleep(0.5)
    tree = [kernel._proc.pid, *[p.pid for p in psutil.Process(kernel._proc.pid).children(recursive=True)]]
    assert kernel.peak_rss_mb > 200
    kernel.close()
    kernel.close()  # twice is fine
    assert len(tree) >= 5
    assert not [pid for pid in tree if psutil.pid_exists(pid) and psutil.Process(pid).status() != "zombie"]
