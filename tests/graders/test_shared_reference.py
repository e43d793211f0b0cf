"""One reference per batch (graders/engine/reference.py): the batch process runs it, the workers
call its kernels (graders/sandbox/attached.py), and a worker that loses it runs its own."""
from __future__ import annotations

import json
import os
import signal
import threading
import time
from concurrent.futures import ProcessPoolExecutor
from multiprocessing import get_context

import pytest

from graders.assignment import load_assignment
from graders.engine.grade_one import GradeOptions
from graders.engine.reference import (AttachedReference, ReferenceLink, ReferenceUnavailable, SharedReference,
                                      suite_uses_reference)
from graders.sandbox import SandboxPolicy
from graders.sandbox.attached import AttachedKernel, Turns

from tests.graders.helpers import REPO

A = "00-pytorch-basics"
OPTIONS = GradeOptions(threads=1)


_link: list = []


def _worker_start(link: ReferenceLink) -> None:  # as the batch does: the link comes with the worker
    _link.append(link)


def _ask_in_worker(_: int) -> tuple[int, int]:
    """A pool worker's question to the batch's reference: (answer, pid of the kernel that gave it)."""
    reference = AttachedReference(load_assignment(A), OPTIONS, _link[0])
    try:
        return reference.call("linear_param_count", 3, 4, bias=False), reference._sessions[0]._pid
    finally:
        reference.close()


@pytest.fixture
def shared():
    reference = SharedReference(load_assignment(A), OPTIONS)
    yield reference
    reference.close()


def test_workers_call_the_one_reference_the_batch_process_ran(shared):
    reference = shared
    with ProcessPoolExecutor(max_workers=2, mp_context=get_context("forkserver"), initializer=_worker_start,
                             initargs=(reference.link,)) as pool:
        answers = list(pool.map(_ask_in_worker, range(2)))
    owned = reference.link.read()["notebooks"]["basics.ipynb"]["pid"]
    assert answers == [(12, owned), (12, owned)]


def test_a_worker_whose_shared_kernel_is_gone_runs_a_reference_of_its_own(shared, capsys):
    reference = shared
    attached = AttachedReference(load_assignment(A), OPTIONS, reference.link)
    try:
        assert attached.call("linear_param_count", 3, 4, bias=False) == 12
        os.kill(attached._sessions[0]._pid, signal.SIGKILL)
        deadline = time.monotonic() + 10
        while attached._sessions[0].alive() and time.monotonic() < deadline:
            time.sleep(0.05)
        assert attached.call("linear_param_count", 3, 4, bias=False) == 12
        assert attached._own is not None
        assert "runs a reference of its own" in capsys.readouterr().err
    finally:
        attached.close()


def test_a_reference_that_failed_fails_every_worker_with_its_reason(tmp_path):
    (tmp_path / "manifest.json").write_text(json.dumps({"error": "the reference solution fails in basics.ipynb cell x"}))
    link = ReferenceLink(manifest=str(tmp_path / "manifest.json"), turns={}, wait_s=1)
    attached = AttachedReference(load_assignment(A), OPTIONS, link)
    for _ in range(2):  # every time, not only the first
        with pytest.raises(ReferenceUnavailable, match="fails in basics.ipynb cell x"):
            attached.call("linear_param_count", 3, 4, bias=False)
    assert attached._own is None


def test_a_request_waits_its_turn_on_a_shared_kernel(tmp_path):
    lock = threading.Lock()
    policy = SandboxPolicy(wall_guard_factor=1.0, wall_guard_extra_s=0.0)
    kernel = AttachedKernel(tmp_path, policy, None, os.getpid(), {}, lock)
    with lock:  # another worker's request is running
        result = kernel.execute("1 + 1", timeout=0.1)
    assert result.status == "timeout" and "stayed busy" in result.error


def test_a_worker_killed_during_its_turn_gives_the_turn_back(tmp_path):
    import subprocess
    import sys

    turn = str(tmp_path / "basics.ipynb.turn")
    holder = subprocess.Popen([sys.executable, "-c", "import sys, time\nfrom graders.sandbox.attached import Turns\n"
                               f"assert Turns({turn!r}).acquire(timeout=5)\nprint('held', flush=True)\ntime.sleep(600)"],
                              stdout=subprocess.PIPE, text=True, cwd=REPO)
    try:
        assert holder.stdout.readline().strip() == "held"
        assert not Turns(turn).acquire(timeout=0.2)
        holder.kill()
        holder.wait()
        mine = Turns(turn)
        assert mine.acquire(timeout=5)
        mine.release()
    finally:
        holder.kill()
        holder.wait()


def test_only_suites_that_name_the_reference_get_one():
    assert suite_uses_reference(load_assignment(A))
    assert not suite_uses_reference(load_assignment("12-ddp"))


def test_the_batch_shares_its_reference_only_when_asked(monkeypatch):
    import argparse

    from graders.cli.grade import add_arguments

    parser = argparse.ArgumentParser()
    add_arguments(parser)
    assert parser.parse_args([A, "submitted"]).shared_reference is False
    assert parser.parse_args([A, "submitted", "--shared-reference"]).shared_reference is True
    assert GradeOptions().shared_reference is False
