"""Honest work is never lost to load, and no command leaves a process, folder or cgroup behind.

Each batch runs `course grade` in a child process with its own TMPDIR, so that what it leaves
can be told apart from what other programs on this machine are doing.
"""
from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import psutil
import pytest

from graders.sandbox import bwrap
from graders.sandbox.cgroup import CANDIDATES, PREFIX
from graders.sandbox.scratch import orphans

from tests.graders.helpers import REPO, filled_release, survivors, write_submission

A = "00-pytorch-basics"
NB = "basics.ipynb"
MODES = ["none", pytest.param("bwrap", marks=pytest.mark.skipif(not bwrap.available()[0],
                                                                reason=f"bubblewrap cannot run here: {bwrap.available()[1]}"))]


@pytest.fixture
def tmpdir_for_batch():
    """A TMPDIR the kernels' uid can enter (pytest's own sits under a 0700 folder)."""
    import shutil

    folder = Path(tempfile.mkdtemp(prefix="course-test-"))
    folder.chmod(0o755)
    yield folder
    shutil.rmtree(folder, ignore_errors=True)


def class_of(root: Path, students: list[str]) -> Path:
    submitted = root / "submitted"
    for student in students:
        write_submission(submitted, student, A, {NB: filled_release(A, NB)})
    return submitted


def course(*args: str, tmpdir: Path, **kw) -> subprocess.Popen:
    env = {**os.environ, "TMPDIR": str(tmpdir), "PYTHONUNBUFFERED": "1"}
    return subprocess.Popen([sys.executable, "-m", "graders.cli.main", *args], env=env, cwd=REPO,
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, **kw)


def finish(proc: subprocess.Popen, timeout: float = 600) -> str:
    out, _ = proc.communicate(timeout=timeout)
    assert proc.returncode == 0, out[-3000:]
    return out


def scores(out: Path) -> dict[str, float]:
    return {p.parent.name: json.loads(p.read_text())["score"] for p in sorted((out / A).glob("*/result.json"))}


def running_under(tmpdir: Path) -> list[int]:
    """Kernel processes (or their bwrap) whose command line names a folder under ``tmpdir``, now."""
    found = []
    for proc in psutil.process_iter(["pid", "cmdline"]):
        with_tmp = any(str(tmpdir) in part for part in (proc.info["cmdline"] or []))
        if with_tmp and proc.info["pid"] != os.getpid():
            found.append(proc.info["pid"])
    return found


def kernels_under(tmpdir: Path) -> list[int]:
    """Those of ``running_under`` still alive after up to 5 s (a killed process takes a moment)."""
    return survivors(running_under(tmpdir), wait_s=5)


def worker_of(kernel: int, cli: int) -> psutil.Process | None:
    """The pool worker that started ``kernel``: the CLI's forkserver's child on its way up."""
    try:
        chain = psutil.Process(kernel).parents()
    except psutil.Error:
        return None
    pids = [p.pid for p in chain]
    if cli not in pids or pids.index(cli) < 2:
        return None
    # Under the CLI's forkserver: the batch's own reference kernels (its zygote's) are not a worker's.
    try:
        with_forkserver = any("forkserver" in part for part in chain[pids.index(cli) - 1].cmdline())
    except psutil.Error:
        return None
    return chain[pids.index(cli) - 2] if with_forkserver else None


def orphaned_cgroups() -> list[Path]:
    from graders.sandbox.cgroup import _owner_gone

    return [p for root in CANDIDATES if root.is_dir() for p in root.glob(PREFIX + "*") if _owner_gone(p)]


def assert_nothing_left(tmpdir: Path) -> None:
    assert kernels_under(tmpdir) == []
    assert orphans(tmpdir) == [] and sorted(p.name for p in tmpdir.iterdir()) == []
    assert orphaned_cgroups() == []


@pytest.mark.parametrize("isolation", MODES)
def test_a_batch_leaves_no_kernel_folder_or_cgroup_behind(tmp_path, tmpdir_for_batch, isolation):
    submitted = class_of(tmp_path, ["ann", "ben", "cat"])
    out = finish(course("grade", A, str(submitted), "--out", str(tmp_path / "out"), "--jobs", "2",
                        "--isolation", isolation, tmpdir=tmpdir_for_batch))
    assert scores(tmp_path / "out") == {"ann": 10.0, "ben": 10.0, "cat": 10.0}
    assert out.count("WARNING: sandbox degraded") == (1 if isolation == "none" else 0)
    assert_nothing_left(tmpdir_for_batch)


@pytest.mark.parametrize("isolation", MODES)
def test_a_worker_killed_mid_grade_leaves_nothing_and_loses_no_grade(tmp_path, tmpdir_for_batch, isolation):
    submitted = class_of(tmp_path, ["ann", "ben", "cat", "dan"])
    proc = course("grade", A, str(submitted), "--out", str(tmp_path / "out"), "--jobs", "2", "--isolation", isolation,
                  tmpdir=tmpdir_for_batch)
    victim = None
    deadline = time.monotonic() + 120
    while victim is None and time.monotonic() < deadline:
        victim = next((w for pid in running_under(tmpdir_for_batch) if (w := worker_of(pid, proc.pid))), None)
        time.sleep(0.02)
    assert victim is not None, "no grading worker with a kernel was seen"
    victim.send_signal(signal.SIGKILL)
    out, _ = proc.communicate(timeout=600)
    assert proc.returncode in (0, 1), out[-3000:]
    graded = scores(tmp_path / "out")
    assert set(graded) == {"ann", "ben", "cat", "dan"}  # the killed worker's submission was graded again
    assert set(graded.values()) == {10.0}, out[-3000:]
    assert_nothing_left(tmpdir_for_batch)


def test_a_saturated_machine_grades_every_submission_as_a_quiet_one_does(tmp_path, tmpdir_for_batch):
    submitted = class_of(tmp_path, [f"s{i}" for i in range(4)])
    busy = [subprocess.Popen([sys.executable, "-c", "while True:\n    pass"]) for _ in range(2 * (os.cpu_count() or 1))]
    try:
        started = time.monotonic()
        finish(course("grade", A, str(submitted), "--out", str(tmp_path / "loaded"), "--jobs", "2", tmpdir=tmpdir_for_batch))
        loaded_s = time.monotonic() - started
    finally:
        for p in busy:
            p.kill()
            p.wait()
    finish(course("grade", A, str(submitted), "--out", str(tmp_path / "quiet"), "--jobs", "2", tmpdir=tmpdir_for_batch))
    loaded, quiet = scores(tmp_path / "loaded"), scores(tmp_path / "quiet")
    assert loaded == quiet and len(loaded) == 4, f"loaded {loaded} vs quiet {quiet} ({loaded_s:.0f} s under load)"
    assert_nothing_left(tmpdir_for_batch)


def test_two_batches_on_one_host_at_once_both_finish_correctly(tmp_path, tmpdir_for_batch):
    submitted = class_of(tmp_path, ["ann", "ben"])
    first = course("grade", A, str(submitted), "--out", str(tmp_path / "one"), "--jobs", "2", tmpdir=tmpdir_for_batch)
    second = course("grade", A, str(submitted), "--out", str(tmp_path / "two"), "--jobs", "2", tmpdir=tmpdir_for_batch)
    finish(first)
    finish(second)
    assert scores(tmp_path / "one") == scores(tmp_path / "two") == {"ann": 10.0, "ben": 10.0}
    assert_nothing_left(tmpdir_for_batch)


def test_only_folders_of_dead_owners_or_old_unused_legacy_ones_are_swept(tmp_path):
    from graders.sandbox.scratch import sweep

    dead = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True, text=True)
    names = {f"course-pid{dead.stdout.strip()}-01-lora-abc": False, f"course-pid{os.getpid()}-01-lora-abc": True,
             "course-12-ddp-abc": True, "course-01-lora-xyz": True, "course-test-abc": True}
    for name in names:
        (tmp_path / name).mkdir()
    old = {"course-01-lora-k3v9x_2a": False, "course-20-inference-serving-abcdefgh": False}
    for name in old:
        (tmp_path / name).mkdir()
        os.utime(tmp_path / name, (time.time() - 7200, time.time() - 7200))
    (tmp_path / "course-30-compression-inuse_01").mkdir()
    os.utime(tmp_path / "course-30-compression-inuse_01", (time.time() - 7200, time.time() - 7200))
    busy = subprocess.Popen(["sleep", "30"], cwd=tmp_path / "course-30-compression-inuse_01")
    names |= {**old, "course-30-compression-inuse_01": True}
    try:
        sweep(tmp_path)
    finally:
        busy.kill()
        busy.wait()
    assert {n: (tmp_path / n).exists() for n in names} == names
