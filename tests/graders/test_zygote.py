"""Warm kernels (graders/sandbox/zygote.py): a kernel forked from the worker's zygote keeps every
guarantee of a cold one, and where the zygote cannot serve, kernels start cold."""
from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import psutil
import pytest

from graders.sandbox import KernelSession, SandboxPolicy, bwrap, zygote

from tests.graders.helpers import REPO, survivors

pytestmark = pytest.mark.skipif(not bwrap.available()[0] or os.geteuid() != 0,
                                reason="warm kernels need bubblewrap run by root")
BOTH = pytest.mark.parametrize("warm", [True, False], ids=["warm", "cold"])


@pytest.fixture(autouse=True)
def no_zygote_left():
    """Each test's scratch parent has a zygote of its own: close them, and forget failures."""
    yield
    zygote.close_all()
    zygote._broken.clear()


@pytest.fixture
def scratches(kernel_scratch):
    """Two submissions' scratch folders side by side, as a grading worker makes them."""
    folders = [kernel_scratch / "ann", kernel_scratch / "ben"]
    for folder in folders:
        folder.mkdir()
    kernel_scratch.chmod(0o711)
    return folders


def started(scratch: Path, warm: bool = True) -> KernelSession:
    session = KernelSession(scratch, SandboxPolicy(warm_kernels=warm))
    session.start()
    assert session.warm == warm and session.cold_reason == ""
    return session


def out(session: KernelSession, code: str) -> str:
    result = session.execute(code, 30)
    assert result.status == "ok", result.error
    return result.stdout.strip()


@BOTH
def test_each_kernel_gets_a_fresh_tmp_and_dev_shm(scratches, warm):
    first = started(scratches[0], warm)
    try:
        out(first, "open('/tmp/left', 'w').write('x')\ntry:\n    open('/dev/shm/left', 'w').write('x')\n"
                   "except OSError:\n    pass  # closed to the kernel, warm and cold alike")
    finally:
        first.close()
    second = started(scratches[1], warm)
    try:
        # /tmp holds the way to the scratch folder (it sits under /tmp here), nothing else
        assert out(second, "import os\nprint(os.path.exists('/tmp/left'), os.listdir('/dev/shm'))") == "False []"
    finally:
        second.close()


@BOTH
def test_a_kernel_runs_as_its_submission_uid_with_no_capability(scratches, warm):
    session = started(scratches[0], warm)
    try:
        uid, caps = out(session, "import os\ncaps = [l.split()[1] for l in open('/proc/self/status') if l.startswith(('CapPrm', 'CapEff', 'CapAmb'))]\n"
                                 "print(os.getuid(), int(''.join(caps), 16))").split()
        assert int(uid) == session.uid and int(caps) == 0
        assert out(session, "import os\nprint(os.getpid() < 10, os.listdir('/proc').count('1'))") == "True 1"
    finally:
        session.close()


@BOTH
def test_another_submissions_scratch_is_out_of_reach(scratches, warm):
    mine, theirs = started(scratches[0], warm), started(scratches[1], warm)
    try:
        out(theirs, "open('secret.txt', 'w').write('answer')")
        result = mine.execute(f"print(open({str(scratches[1] / 'secret.txt')!r}).read())", 30)
        assert result.status == "error" and "answer" not in result.stdout
        assert ("No such file" in result.error) if warm else ("Permission denied" in result.error or "No such file" in result.error)
    finally:
        mine.close()
        theirs.close()


@BOTH
def test_hugging_face_caches_lie_in_the_kernels_own_scratch(scratches, warm):
    session = started(scratches[0], warm)
    try:
        paths = out(session, "import huggingface_hub.constants as c, transformers.utils.hub as t\n"
                             "print(c.HF_HOME, c.HF_HUB_CACHE, c.HF_TOKEN_PATH, t.HF_MODULES_CACHE)").split()
        assert len(paths) == 4 and all(p.startswith(str(scratches[0]) + "/.cache/huggingface") for p in paths), paths
    finally:
        session.close()


@BOTH
def test_close_kills_daemons_the_kernel_left_behind(scratches, warm):
    session = started(scratches[0], warm)
    out(session, "import subprocess\nsubprocess.Popen(['setsid', 'sh', '-c', 'sleep 600 & sleep 600 & wait'], "
                 "start_new_session=True)\nimport time; time.sleep(0.5)")
    sleepers = [p.pid for p in psutil.process_iter(["name", "uids"])
                if p.info["name"] == "sleep" and p.info["uids"] and p.info["uids"].real == session.uid]
    session.close()
    assert len(sleepers) == 2 and survivors(sleepers) == []


def test_the_zygote_dies_with_its_worker(kernel_scratch):
    script = textwrap.dedent(f"""
        import sys, time
        sys.path.insert(0, {str(REPO)!r})
        from graders.sandbox import KernelSession, SandboxPolicy, zygote
        s = KernelSession({str(kernel_scratch)!r}, SandboxPolicy())
        s.start()
        z = next(iter(zygote._zygotes.values()))
        print(z._proc.pid, z.pid, s._proc.pid, s.warm, flush=True)
        time.sleep(600)
    """)
    worker = subprocess.Popen([sys.executable, "-c", script], stdout=subprocess.PIPE, text=True, cwd=REPO)
    try:
        bwrap_pid, zygote_pid, kernel_pid, warm = worker.stdout.readline().split()
        assert warm == "True"
        worker.send_signal(signal.SIGKILL)
        worker.wait()
        assert survivors([int(bwrap_pid), int(zygote_pid), int(kernel_pid)]) == []
    finally:
        worker.kill()
        worker.wait()


def test_a_zygote_that_will_not_start_means_cold_kernels(scratches, monkeypatch, capsys):
    monkeypatch.setattr(zygote, "zygote_argv", lambda parent, policy: [sys.executable, "-c", "raise SystemExit(3)"])
    monkeypatch.setattr(zygote, "_zygotes", {})
    monkeypatch.setattr(zygote, "_broken", {})
    for folder in scratches:  # said once, then every kernel simply starts cold
        session = KernelSession(folder, SandboxPolicy())
        session.start()
        try:
            assert not session.warm and out(session, "print(6 * 7)") == "42"
            assert "warm kernels unavailable" in session.cold_reason  # every kernel's fallback is recorded
        finally:
            session.close()
    assert capsys.readouterr().err.count("warm kernels unavailable") == 1


def test_a_zygote_that_died_means_cold_kernels_from_then_on(scratches, capsys):
    first = started(scratches[0])
    source = first._proc.zygote
    first.close()
    os.killpg(source._proc.pid, signal.SIGKILL)
    source._proc.wait()
    second = KernelSession(scratches[1], SandboxPolicy())
    second.start()
    try:
        assert not second.warm and out(second, "print(6 * 7)") == "42"
        assert "zygote died" in second.cold_reason
    finally:
        second.close()
    assert "zygote died" in capsys.readouterr().err


def test_the_switch_reaches_the_policy(monkeypatch):
    from graders.assignment import load_assignment
    from graders.cli.grade import add_arguments, options_from
    from graders.engine.grade_one import make_policy
    import argparse

    parser = argparse.ArgumentParser()
    add_arguments(parser)
    assignment = load_assignment("00-pytorch-basics")
    assert assignment.limits.warm_kernels
    for flags, warm in (([], True), (["--cold-kernels"], False)):
        options = options_from(parser.parse_args(["00-pytorch-basics", "submitted", *flags]))
        assert make_policy(assignment, options, []).warm_kernels is warm


def test_no_zygote_where_what_kernels_read_lies_inside_the_scratch_parent(kernel_scratch, capsys):
    """The warm view covers the scratch parent; a checkout or venv inside it would vanish from its
    kernels (a clone under /tmp with TMPDIR=/tmp): such kernels start cold, said once, unflagged."""
    inside = kernel_scratch / "checkout" / "common_utils"
    inside.mkdir(parents=True)
    policy = SandboxPolicy(needed_paths=(str(inside),))
    scratch = kernel_scratch / "ann"
    scratch.mkdir()
    assert zygote.for_kernel(scratch, policy, {}) is None
    assert zygote.for_kernel(scratch, policy, {}) is None
    assert capsys.readouterr().err.count("warm kernels unavailable") == 1
    session = KernelSession(scratch, policy)
    try:
        session.start()
        assert session.start_attempts == 1 and not session.warm and session.cold_reason == ""
    finally:
        session.close()


def test_a_kernel_that_fell_back_to_cold_is_flagged_for_the_ta(monkeypatch):
    """Distinct from slow_kernel_start: nothing was slow to answer, the zygote could not serve."""
    from graders.assignment import load_assignment
    from graders.engine.grade_one import GradeOptions, grade_submission

    from tests.graders.helpers import filled_release, write_submission
    import tempfile

    monkeypatch.setattr(zygote, "zygote_argv", lambda parent, policy: [sys.executable, "-c", "raise SystemExit(3)"])
    monkeypatch.setattr(zygote, "_zygotes", {})
    monkeypatch.setattr(zygote, "_broken", {})
    a = "00-pytorch-basics"
    with tempfile.TemporaryDirectory() as root:
        folder = write_submission(Path(root), "ann", a, {"basics.ipynb": filled_release(a, "basics.ipynb")})
        result = grade_submission(load_assignment(a), "ann", folder, GradeOptions())
    kinds = [f["kind"] for f in result["flags"]]
    assert kinds.count("warm_kernel_fallback") == 1 and "slow_kernel_start" not in kinds, result["flags"]
    detail = next(f["detail"] for f in result["flags"] if f["kind"] == "warm_kernel_fallback")
    assert "basics.ipynb" in detail and "warm kernels unavailable" in detail
