"""The sandbox on its own: what a kernel can and cannot reach, and the fallback without bwrap."""
from __future__ import annotations

import pytest

from graders.errors import CourseError
from graders.sandbox import KernelSession, SandboxPolicy, bwrap
from graders.sandbox.policy import SandboxPolicy as Policy

from tests.graders.helpers import REPO

needs_bwrap = pytest.mark.skipif(not bwrap.available()[0], reason=f"bubblewrap cannot run here: {bwrap.available()[1]}")


@pytest.fixture(scope="module")
def kernel(tmp_path_factory):
    session = KernelSession(tmp_path_factory.mktemp("scratch"),
                            SandboxPolicy(hidden_paths=(str(REPO / "solutions"), str(REPO / "graders"))))
    session.start()
    yield session
    session.close()


def run(kernel, code):
    result = kernel.execute(code, timeout=30)
    return result.status, result.stdout.strip(), result.error


@needs_bwrap
def test_no_network(kernel):
    status, _, error = run(kernel, "import socket\nsocket.create_connection(('127.0.0.1', 22), timeout=2)")
    assert status == "error" and ("Network is unreachable" in error or "Connection refused" in error or "OSError" in error)
    assert run(kernel, "import socket\nprint(sorted(i[1] for i in socket.if_nameindex()))")[1] == "['lo']"


@needs_bwrap
def test_instructor_tree_is_empty_and_the_rest_read_only(kernel):
    assert run(kernel, f"import os\nprint(os.listdir({str(REPO / 'solutions')!r}))")[1] == "[]"
    assert run(kernel, "import graders")[0] == "error"
    status, _, error = run(kernel, f"open({str(REPO / 'README.md')!r}, 'a').write('x')")
    assert status == "error" and ("Read-only file system" in error or "Permission denied" in error)
    status, _, error = run(kernel, "open('/var/tmp/planted', 'w').write('x')")  # world-writable outside
    assert status == "error" and "Read-only file system" in error
    assert run(kernel, "open('mine.txt', 'w').write('ok')")[0] == "ok"  # the scratch folder is writable


@needs_bwrap
def test_own_pid_namespace_and_tree_killed_on_close(tmp_path):
    import psutil

    session = KernelSession(tmp_path, SandboxPolicy())
    session.start()
    assert session.execute("import os\nprint(os.getpid() < 100)", 30).stdout.strip() == "True"
    session.execute("import subprocess\np = subprocess.Popen(['sleep', '600'])", 30)
    tree = [p.pid for p in psutil.Process(session._proc.pid).children(recursive=True)]
    session.close()
    assert tree and not [pid for pid in tree if psutil.pid_exists(pid) and psutil.Process(pid).status() != "zombie"]


def test_without_bwrap_the_run_says_it_is_degraded(tmp_path):
    session = KernelSession(tmp_path, SandboxPolicy(isolation="none"))
    session.start()
    try:
        assert session.isolation == "rlimits-only" and "rlimits only" in session.degraded_reason
        assert session.execute("print(6 * 7)", 30).stdout.strip() == "42"
    finally:
        session.close()


def test_bwrap_required_but_missing_is_refused(tmp_path, monkeypatch):
    monkeypatch.setattr(bwrap, "available", lambda: (False, "bwrap is not installed"))
    with pytest.raises(CourseError, match="isolation 'bwrap' requested but bwrap is not installed"):
        KernelSession(tmp_path, SandboxPolicy(isolation="bwrap")).start()


@pytest.mark.parametrize("field, value, message", [
    ("isolation", "docker", "use one of auto, bwrap, none"),
    ("memory_mb", 10, "memory_mb 10: give an integer >= 256"),
    ("cell_timeout_s", 0, "cell_timeout_s 0: give seconds > 0"),
])
def test_policy_values_are_checked(field, value, message):
    with pytest.raises(CourseError, match=message):
        Policy(**{field: value})


def test_an_assignment_can_raise_its_process_limit_for_multi_process_kernels():
    from graders.assignment import load_assignment
    from graders.engine.grade_one import GradeOptions, make_policy

    assignment = load_assignment("13-deepspeed-zero")
    assert make_policy(assignment, GradeOptions(), []).max_processes == assignment.limits.max_processes == 512
    assert make_policy(load_assignment("00-pytorch-basics"), GradeOptions(), []).max_processes == 128
