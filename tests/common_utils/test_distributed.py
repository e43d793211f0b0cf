"""common_utils.distributed: the toy model and data, torchrun launches that leave no rank behind,
and DeepSpeed kept from compiling anything."""
from __future__ import annotations

import time

import psutil
import pytest
import torch

from common_utils.distributed import launch_torchrun, toy_data, toy_model

RANK_FILE = "import os, pathlib, sys\npathlib.Path(sys.argv[1], os.environ['RANK']).write_text(os.environ['MASTER_PORT'])\n"
HANG = "import os, pathlib, sys, time\npathlib.Path(sys.argv[1], str(os.getpid())).touch()\ntime.sleep(600)\n"


def test_toy_model_depends_on_its_seed_only():
    torch.manual_seed(1)
    a = toy_model(7).state_dict()
    torch.manual_seed(2)
    b = toy_model(7).state_dict()
    assert all(torch.equal(a[k], b[k]) for k in a)
    assert not torch.equal(a["0.weight"], toy_model(8).state_dict()["0.weight"])


def test_toy_data_is_reproducible_and_uses_every_class():
    x, y = toy_data(200, 3)
    x2, y2 = toy_data(200, 3)
    assert torch.equal(x, x2) and torch.equal(y, y2) and len(set(y.tolist())) == 5


def test_launch_runs_every_rank_on_one_free_port(tmp_path):
    script = tmp_path / "rank.py"
    script.write_text(RANK_FILE)
    first = launch_torchrun(str(script), [str(tmp_path)], nproc=2, timeout_s=120)
    assert first["returncode"] == 0, first["output"]
    ports = {(tmp_path / r).read_text() for r in ("0", "1")}
    assert len(ports) == 1 and ports != {"29500"}


def test_a_hanging_launch_is_killed_with_every_rank(tmp_path):
    script = tmp_path / "hang.py"
    script.write_text(HANG)
    started = time.monotonic()
    result = launch_torchrun(str(script), [str(tmp_path)], nproc=2, timeout_s=25)
    assert time.monotonic() - started < 90 and "killed after 25 s" in result["output"]
    ranks = [int(p.name) for p in tmp_path.iterdir() if p.name.isdigit()]
    assert len(ranks) == 2
    time.sleep(0.5)
    assert not [pid for pid in ranks if psutil.pid_exists(pid) and psutil.Process(pid).status() != "zombie"]


def test_no_jit_comm_op_keeps_deepspeed_from_building_the_shm_op():
    import sys

    pytest.importorskip("deepspeed")
    from common_utils.distributed import no_jit_comm_op

    no_jit_comm_op()
    assert sys.modules["deepspeed.comm.torch"].build_shm_op() is None


def test_a_port_taken_before_torchrun_listens_is_tried_again_elsewhere(tmp_path, monkeypatch):
    """Where the network is shared, another job's socket can take the chosen port first."""
    import socket

    import common_utils.distributed as distributed

    holder = socket.socket()
    holder.bind(("127.0.0.1", 0))
    holder.listen()
    taken = holder.getsockname()[1]
    picks = iter([taken])
    real_socket = socket.socket

    class FirstPickTaken(real_socket):  # the first port chosen is the one already listened on
        def getsockname(self):
            port = next(picks, None)
            return ("127.0.0.1", port) if port is not None else super().getsockname()

    monkeypatch.setattr(socket, "socket", FirstPickTaken)
    runs = []
    once = distributed._torchrun_once
    monkeypatch.setattr(distributed, "_torchrun_once", lambda *a: runs.append(once(*a)) or runs[-1])
    script = tmp_path / "rank.py"
    script.write_text(RANK_FILE)
    try:
        result = distributed.launch_torchrun(str(script), [str(tmp_path)], nproc=2, timeout_s=120)
    finally:
        holder.close()
    assert result["returncode"] == 0, result["output"]
    ports = {(tmp_path / r).read_text() for r in ("0", "1")}
    assert len(ports) == 1 and ports != {str(taken)}
    assert len(runs) == 2 and distributed._port_taken(runs[0]["output"]), runs[0]["output"]
