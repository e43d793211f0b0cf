"""The sandbox on its own: what a kernel can and cannot reach, and the fallback without bwrap."""
from __future__ import annotations

from pathlib import Path

import pytest

from graders.errors import CourseError
from graders.sandbox import KernelSession, SandboxPolicy, bwrap
from graders.sandbox.policy import SandboxPolicy as Policy

from tests.graders.helpers import REPO, survivors

needs_bwrap = pytest.mark.skipif(not bwrap.available()[0], reason=f"bubblewrap cannot run here: {bwrap.available()[1]}")


@pytest.fixture(scope="module")
def kernel(module_kernel_scratch):
    session = KernelSession(module_kernel_scratch,
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
def test_instructor_tree_is_absent_and_the_rest_read_only(kernel):
    for path in ("solutions", "graders", "README.md", "assignments"):
        assert run(kernel, f"import os\nprint(os.path.exists({str(REPO / path)!r}))")[1] == "False", path
    assert run(kernel, "import graders")[0] == "error"
    status, _, error = run(kernel, f"open({str(REPO / 'README.md')!r}, 'a').write('x')")
    assert status == "error" and ("Read-only file system" in error or "No such file" in error)
    status, _, error = run(kernel, "open('/var/tmp/planted', 'w').write('x')")  # world-writable on the host
    assert status == "error" and ("Read-only file system" in error or "No such file" in error)
    status, _, error = run(kernel, "open('/planted', 'w').write('x')")
    assert status == "error" and "Read-only file system" in error
    assert run(kernel, "open('mine.txt', 'w').write('ok')")[0] == "ok"  # the scratch folder is writable


@pytest.fixture
def planted():
    """A solution notebook in a sibling folder of the checkout and in another user's home."""
    import shutil
    import uuid

    tag = uuid.uuid4().hex[:8]
    places = [REPO.parent / f"other-course-{tag}" / "solutions", Path("/home") / f"ta-{tag}" / "course" / "solutions"]
    for folder in places:
        folder.mkdir(parents=True)
        (folder / "answers.ipynb").write_text('{"secret": "reference solution"}')
        for part in [folder, *folder.parents][:3]:
            part.chmod(0o755)
        (folder / "answers.ipynb").chmod(0o644)
    yield [folder / "answers.ipynb" for folder in places]
    for folder in places:
        shutil.rmtree(folder.parents[0] if folder.parent.name.startswith("other-course") else folder.parents[1])


def module_scratch_parent(kernel) -> Path:
    return kernel.scratch.parent


@needs_bwrap
def test_only_allowed_folders_are_visible(kernel, planted):
    for path in planted:
        status, out, error = run(kernel, f"print(open({str(path)!r}).read())")
        assert status == "error" and "No such file" in error and "secret" not in out, path
    listing = set(eval(run(kernel, "import os\nprint(sorted(os.listdir('/')))")[1]))
    allowed = {p.lstrip("/") for p in bwrap.SYSTEM} | {"dev", "proc", "tmp"}
    for path in [*bwrap.needed_by_interpreter(), str(REPO), str(module_scratch_parent(kernel))]:
        allowed.add(Path(path).parts[1])  # the top folder of each bound path
    assert listing <= allowed and "home" not in listing and "var" not in listing, listing - allowed
    assert run(kernel, "import torch, ipykernel\nprint('ok')")[1] == "ok"  # the interpreter and its packages are there


@needs_bwrap
def test_own_pid_namespace_and_tree_killed_on_close(kernel_scratch):
    import psutil

    session = KernelSession(kernel_scratch, SandboxPolicy())
    session.start()
    assert session.execute("import os\nprint(os.getpid() < 100)", 30).stdout.strip() == "True"
    session.execute("import subprocess\np = subprocess.Popen(['sleep', '600'])", 30)
    tree = [p.pid for p in psutil.Process(session._proc.pid).children(recursive=True)]
    session.close()
    assert tree and survivors(tree) == []


def test_without_bwrap_the_run_says_it_is_degraded(kernel_scratch):
    session = KernelSession(kernel_scratch, SandboxPolicy(isolation="none"))
    session.start()
    try:
        assert session.isolation == "rlimits-only" and "rlimits only" in session.degraded_reason
        assert session.execute("print(6 * 7)", 30).stdout.strip() == "42"
    finally:
        session.close()


def test_bwrap_required_but_missing_is_refused(kernel_scratch, monkeypatch):
    monkeypatch.setattr(bwrap, "available", lambda: (False, "bwrap is not installed"))
    with pytest.raises(CourseError, match="isolation 'bwrap' requested but bwrap is not installed"):
        KernelSession(kernel_scratch, SandboxPolicy(isolation="bwrap")).start()


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
