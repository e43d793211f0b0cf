# ---
# jupyter:
#   jupytext:
#     text_representation:
#       extension: .py
#       format_name: percent
#   kernelspec:
#     display_name: Python 3
#     language: python
#     name: python3
# ---

# %% [markdown] nbgrader={"grade": false, "grade_id": "intro", "locked": true, "schema_version": 3, "solution": false, "task": false}
# # 1.2 PyTorch DDP：資料平行訓練
#
# 資料平行（data parallelism）：每個 process（rank）放一份完整的模型，各自讀 **不同** 的資料，
# 算出 gradient 後用 **all-reduce** 取平均，所以每一步所有 rank 做的更新都相同，
# 結果等於在單一 process 上用整個 global batch 訓練（Li et al., 2020, *PyTorch Distributed:
# Experiences on Accelerating Data Parallel Training*）。
#
# 本作業在 CPU 上用 `gloo` backend 與 `torchrun --nproc_per_node 2` 跑兩個 process：
# 1. 選一個空的 port、用 torchrun 啟動訓練 script；
# 2. 切資料：訓練用 `DistributedSampler` 與 `set_epoch`，評估用不重複、不遺漏的切法；
# 3. 手寫 broadcast 與 gradient all-reduce；
# 4. 換成 `DistributedDataParallel`，用 `no_sync` 做 gradient accumulation；
# 5. 只有 rank 0 寫 checkpoint 與 log，最後拆掉 process group。
#
# 訓練 script 由下面的 `%%writefile` cell 一段一段寫進 `train_ddp.py`；grader 會把你的函式
# 放進它自己的 torchrun 測試裡，和單一 process 的計算逐一比對。

# %% nbgrader={"grade": false, "grade_id": "setup", "locked": true, "schema_version": 3, "solution": false, "task": false}
import importlib
import json
import os
import signal
import socket
import subprocess
import sys
from pathlib import Path

import psutil
import torch

from common_utils.profiles import get_profile

PROFILE = get_profile()
ARTIFACTS = Path("artifacts")
ARTIFACTS.mkdir(exist_ok=True)
print("profile:", PROFILE, "| torch:", torch.__version__)

# %% [markdown] nbgrader={"grade": false, "grade_id": "launch-md", "locked": true, "schema_version": 3, "solution": false, "task": false}
# ## 1. 啟動：空的 port 與 torchrun
#
# torchrun 讓 rank 0 在 `MASTER_ADDR:MASTER_PORT` 開一個 TCP store，其他 rank 連過去會合
# （rendezvous）。寫死 port（例如預設的 29500）在共用機器上會撞到別人的工作：
# - `free_port()`：向作業系統要一個目前沒人用的 port（bind 到 port 0，讀回系統給的號碼）。
# - `launch(script, args, nproc=2, timeout_s=300)`：用目前的 Python 執行
#   `python -m torch.distributed.run --nproc_per_node N --master_addr 127.0.0.1 --master_port P script args…`，
#   環境變數加上 `OMP_NUM_THREADS=1`（兩個 rank 分兩顆核心，不要互搶）。
#   用 `start_new_session=True` 開新的 process group。逾時要殺掉 **每一個** rank：torchrun 把每個 rank
#   放進它自己的 session，`os.killpg` 只殺得到 torchrun 那一組，所以先用
#   `psutil.Process(pid).children(recursive=True)` 找出所有子孫 process 逐一 `kill()`，再 `os.killpg`。回傳 `{"returncode": int, "output": 最後 4000 個字元}`。

# %% nbgrader={"grade": false, "grade_id": "launch", "locked": false, "schema_version": 3, "solution": true, "task": false}
def free_port() -> int:
    """A TCP port on 127.0.0.1 that nothing listens on right now."""
    ### BEGIN SOLUTION
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]
    ### END SOLUTION


def launch(script: str, args: list[str] = (), nproc: int = 2, timeout_s: float = 300) -> dict:
    """Run ``script`` under torchrun with ``nproc`` ranks; kill every rank if it overruns."""
    ### BEGIN SOLUTION
    cmd = [sys.executable, "-m", "torch.distributed.run", f"--nproc_per_node={nproc}",
           "--master_addr=127.0.0.1", f"--master_port={free_port()}", script, *map(str, args)]
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    proc = subprocess.Popen(cmd, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                            start_new_session=True)
    try:
        output, _ = proc.communicate(timeout=timeout_s)
    except subprocess.TimeoutExpired:
        for child in psutil.Process(proc.pid).children(recursive=True):  # each rank has its own session
            child.kill()
        os.killpg(proc.pid, signal.SIGKILL)
        output, _ = proc.communicate()
        output += f"\n[launch] killed after {timeout_s} s"
    return {"returncode": proc.returncode, "output": output[-4000:]}
    ### END SOLUTION


# %% nbgrader={"grade": true, "grade_id": "test-launch", "locked": true, "points": 2, "schema_version": 3, "solution": false, "task": false}
port = free_port()
assert isinstance(port, int) and 1024 <= port <= 65535, f"free_port() 應回傳 1024–65535 的整數，實際 {port!r}"

# %% [markdown] nbgrader={"grade": false, "grade_id": "script-setup-md", "locked": true, "schema_version": 3, "solution": false, "task": false}
# ## 2. 訓練 script：process group
#
# torchrun 用環境變數告訴每個 rank 它是誰（`RANK`、`WORLD_SIZE`、`LOCAL_RANK`）以及去哪裡會合
# （`MASTER_ADDR`、`MASTER_PORT`）。`setup()` 用 `dist.init_process_group` 加入 process group：
# CPU 用 `gloo`，GPU 用 `nccl`（並 `torch.cuda.set_device(LOCAL_RANK)`）；給一個 60 秒的 `timeout`，
# 某個 rank 當掉時其他 rank 才不會永遠等下去。`teardown()` 拆掉 process group。

# %% nbgrader={"grade": false, "grade_id": "script-setup", "locked": false, "schema_version": 3, "solution": true, "task": false}
# %%writefile train_ddp.py
"""Data-parallel training of a toy classifier.

Launch: torchrun --nproc_per_node 2 train_ddp.py --out artifacts/ddp
"""
import argparse
import contextlib
import json
import os
from datetime import timedelta
from pathlib import Path

import torch
import torch.distributed as dist
from safetensors.torch import save_file
from torch.nn.parallel import DistributedDataParallel as DDP
from torch.utils.data import DistributedSampler

from common_utils.distributed import loss_fn, toy_data, toy_model


def setup() -> tuple[int, int]:
    """Join the process group that torchrun describes; return (rank, world size)."""
    ### BEGIN SOLUTION
    backend = "nccl" if torch.cuda.is_available() else "gloo"
    if backend == "nccl":
        torch.cuda.set_device(int(os.environ["LOCAL_RANK"]))
    dist.init_process_group(backend, timeout=timedelta(seconds=60))
    return dist.get_rank(), dist.get_world_size()
    ### END SOLUTION


def teardown() -> None:
    ### BEGIN SOLUTION
    dist.destroy_process_group()
    ### END SOLUTION


# %% [markdown] nbgrader={"grade": false, "grade_id": "script-data-md", "locked": true, "schema_version": 3, "solution": false, "task": false}
# ## 3. 切資料
#
# - **訓練**：`epoch_indices(n, rank, world, epoch, seed)` 回傳這個 rank 在第 `epoch` 個 epoch
#   依序讀的樣本編號。用 `DistributedSampler(range(n), num_replicas=world, rank=rank, shuffle=True, seed=seed)`，
#   並在每個 epoch 開始前呼叫 `sampler.set_epoch(epoch)`：少了它，每個 epoch 的順序都一樣。
#   `DistributedSampler` 在 `n` 不能被 `world` 整除時會 **重複** 幾筆樣本補齊，讓每個 rank 步數相同。
# - **評估**：每筆樣本必須剛好算一次。`shard_indices(n, rank, world)` 回傳這個 rank 的樣本編號：
#   各 rank 之間不重複，合起來剛好是 `0…n-1`，各 rank 的筆數最多差 1（`n` 不整除也一樣）。

# %% nbgrader={"grade": false, "grade_id": "script-data", "locked": false, "schema_version": 3, "solution": true, "task": false}
# %%writefile -a train_ddp.py


def epoch_indices(n: int, rank: int, world: int, epoch: int, seed: int = 0) -> list[int]:
    """The sample indices ``rank`` reads in ``epoch``, in order (shuffled, padded to equal length)."""
    ### BEGIN SOLUTION
    sampler = DistributedSampler(range(n), num_replicas=world, rank=rank, shuffle=True, seed=seed)
    sampler.set_epoch(epoch)
    return list(sampler)
    ### END SOLUTION


def shard_indices(n: int, rank: int, world: int) -> list[int]:
    """This rank's share of 0..n-1 for evaluation: disjoint across ranks, covering all, sizes within 1."""
    ### BEGIN SOLUTION
    return list(range(rank, n, world))
    ### END SOLUTION


# %% nbgrader={"grade": false, "grade_id": "import-script", "locked": true, "schema_version": 3, "solution": false, "task": false}
import train_ddp  # noqa: E402  (written by the cells above)

train_ddp = importlib.reload(train_ddp)  # run the cells again after an edit: reload picks it up
epoch_indices, shard_indices = train_ddp.epoch_indices, train_ddp.shard_indices
print("rank 0, epoch 0:", epoch_indices(10, 0, 2, 0)[:5], "| shard of 10 on rank 2/3:", shard_indices(10, 2, 3))

# %% nbgrader={"grade": true, "grade_id": "test-data", "locked": true, "points": 4, "schema_version": 3, "solution": false, "task": false}
shards = [shard_indices(10, r, 3) for r in range(3)]
assert sorted(i for s in shards for i in s) == list(range(10)), f"三個 rank 的評估資料合起來應剛好是 0…9，實際 {shards}"
assert epoch_indices(8, 0, 2, 0) != epoch_indices(8, 0, 2, 1), "第 0 與第 1 個 epoch 的順序相同：是否少了 set_epoch？"

# %% [markdown] nbgrader={"grade": false, "grade_id": "script-manual-md", "locked": true, "schema_version": 3, "solution": false, "task": false}
# ## 4. 手寫同步：broadcast 與 all-reduce
#
# 每個 rank 用不同的 seed 初始化模型（grader 也會這樣做），所以一開始各 rank 的權重不同：
# - `broadcast_parameters(model)`：把 rank 0 的每個參數 `dist.broadcast` 到所有 rank。
# - `average_gradients(model)`：每個有 gradient 的參數做一次 `dist.all_reduce`（預設是 **加總**），
#   再除以 world size 變成 **平均**。每步只做這些 all-reduce，不多做。
# - `manual_step(model, optimizer, x, y)`：清 gradient → `loss_fn(model(x), y)` → backward →
#   `average_gradients` → `optimizer.step()`；回傳 loss（Python float）。
#
# 每個 rank 的 loss 是自己那份資料的平均，平均 gradient 就等於整個 global batch 的 gradient。

# %% nbgrader={"grade": false, "grade_id": "script-manual", "locked": false, "schema_version": 3, "solution": true, "task": false}
# %%writefile -a train_ddp.py


def broadcast_parameters(model: torch.nn.Module) -> None:
    """Overwrite every rank's parameters with rank 0's."""
    ### BEGIN SOLUTION
    for param in model.parameters():
        dist.broadcast(param.data, src=0)
    ### END SOLUTION


def average_gradients(model: torch.nn.Module) -> None:
    """Replace each gradient by its mean over the ranks: one all_reduce per parameter."""
    ### BEGIN SOLUTION
    world = dist.get_world_size()
    for param in model.parameters():
        if param.grad is not None:
            dist.all_reduce(param.grad, op=dist.ReduceOp.SUM)
            param.grad /= world
    ### END SOLUTION


def manual_step(model, optimizer, x: torch.Tensor, y: torch.Tensor) -> float:
    """One synchronous data-parallel step on this rank's batch (x, y)."""
    ### BEGIN SOLUTION
    optimizer.zero_grad(set_to_none=True)
    loss = loss_fn(model(x), y)
    loss.backward()
    average_gradients(model)
    optimizer.step()
    return loss.item()
    ### END SOLUTION


# %% [markdown] nbgrader={"grade": false, "grade_id": "script-ddp-md", "locked": true, "schema_version": 3, "solution": false, "task": false}
# ## 5. DistributedDataParallel 與 no_sync
#
# `DDP(model)` 建構時就會從 rank 0 broadcast 參數，backward 時把 gradient 分成 bucket、
# 一邊算一邊 all-reduce 取平均。
# - `wrap_ddp(model)`：CPU 上 `DDP(model)`；GPU 上 `DDP(model, device_ids=[目前的 GPU])`。
# - `accumulation_step(ddp_model, optimizer, micro_batches)`：gradient accumulation。
#   `micro_batches` 是 `[(x, y), …]`；每個 micro-batch 的 loss 除以 micro-batch 數再 backward，
#   **除了最後一個** 都包在 `ddp_model.no_sync()` 裡（只在本地累加，不通訊），
#   最後一個 backward 時 DDP 才 all-reduce 一次；然後 `optimizer.step()`。回傳各 micro-batch loss 的和。
#
# 結果應等於單一 process 上用整個 global batch 做一步。

# %% nbgrader={"grade": false, "grade_id": "script-ddp", "locked": false, "schema_version": 3, "solution": true, "task": false}
# %%writefile -a train_ddp.py


def wrap_ddp(model: torch.nn.Module) -> DDP:
    ### BEGIN SOLUTION
    if torch.cuda.is_available():
        return DDP(model, device_ids=[torch.cuda.current_device()])
    return DDP(model)
    ### END SOLUTION


def accumulation_step(ddp_model: DDP, optimizer, micro_batches: list) -> float:
    """One optimizer step over several micro-batches, communicating once."""
    ### BEGIN SOLUTION
    optimizer.zero_grad(set_to_none=True)
    total = 0.0
    for i, (x, y) in enumerate(micro_batches):
        last = i == len(micro_batches) - 1
        with contextlib.nullcontext() if last else ddp_model.no_sync():
            loss = loss_fn(ddp_model(x), y) / len(micro_batches)
            loss.backward()
        total += loss.item()
    optimizer.step()
    return total
    ### END SOLUTION


# %% [markdown] nbgrader={"grade": false, "grade_id": "script-save-md", "locked": true, "schema_version": 3, "solution": false, "task": false}
# ## 6. 只有 rank 0 寫 checkpoint
#
# 所有 rank 的權重都一樣，寫一份就夠；兩個 rank 同時寫同一個檔案還會互相覆蓋出壞檔。
# `save_checkpoint(model, path)`：rank 0 把權重存成 safetensors（DDP 包過的模型要先取出 `.module`，
# key 才不會多出 `module.` 前綴），其他 rank 什麼都不寫；最後 `dist.barrier()`，讓所有 rank 都等檔案寫完。

# %% nbgrader={"grade": false, "grade_id": "script-save", "locked": false, "schema_version": 3, "solution": true, "task": false}
# %%writefile -a train_ddp.py


def save_checkpoint(model: torch.nn.Module, path: str) -> None:
    ### BEGIN SOLUTION
    if dist.get_rank() == 0:
        module = model.module if isinstance(model, DDP) else model
        Path(path).parent.mkdir(parents=True, exist_ok=True)
        save_file({k: v.detach().cpu().contiguous() for k, v in module.state_dict().items()}, path)
    dist.barrier()
    ### END SOLUTION


# %% [markdown] nbgrader={"grade": false, "grade_id": "script-main-md", "locked": true, "schema_version": 3, "solution": false, "task": false}
# ## 7. 組起來：main
#
# 這段已經寫好：各 rank 用不同 seed 建模型（DDP 會用 rank 0 的覆蓋）、每個 epoch 依
# `epoch_indices` 取資料、每步用 `accumulation_step`，只有 rank 0 印 log、寫 metrics 與 checkpoint。

# %% nbgrader={"grade": false, "grade_id": "script-main", "locked": true, "schema_version": 3, "solution": false, "task": false}
# %%writefile -a train_ddp.py


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--out", default="artifacts/ddp", help="folder for model.safetensors and metrics.json")
    parser.add_argument("--n", type=int, default=512, help="training examples")
    parser.add_argument("--epochs", type=int, default=3)
    parser.add_argument("--micro-batch", type=int, default=16, help="examples per rank per micro-batch")
    parser.add_argument("--accumulation", type=int, default=2, help="micro-batches per optimizer step")
    parser.add_argument("--lr", type=float, default=0.5)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()

    rank, world = setup()
    device = torch.device("cuda", torch.cuda.current_device()) if torch.cuda.is_available() else torch.device("cpu")
    model = wrap_ddp(toy_model(args.seed + rank).to(device))  # a different init per rank, on purpose
    optimizer = torch.optim.SGD(model.parameters(), lr=args.lr)
    x, y = toy_data(args.n, args.seed)
    x, y = x.to(device), y.to(device)
    per_step = args.micro_batch * args.accumulation
    losses = []
    for epoch in range(args.epochs):
        order = epoch_indices(args.n, rank, world, epoch, args.seed)
        for start in range(0, len(order) - per_step + 1, per_step):
            idx = order[start:start + per_step]
            micro = [(x[idx[i:i + args.micro_batch]], y[idx[i:i + args.micro_batch]])
                     for i in range(0, per_step, args.micro_batch)]
            losses.append(accumulation_step(model, optimizer, micro))
        if rank == 0:
            print(f"epoch {epoch}: loss {sum(losses[-5:]) / len(losses[-5:]):.4f}", flush=True)
    save_checkpoint(model, str(Path(args.out) / "model.safetensors"))
    if rank == 0:
        (Path(args.out) / "metrics.json").write_text(json.dumps({"losses": losses, "world": world}))
    teardown()


if __name__ == "__main__":
    main()

# %% [markdown] nbgrader={"grade": false, "grade_id": "run-md", "locked": true, "schema_version": 3, "solution": false, "task": false}
# ## 8. 啟動訓練
#
# 用你的 `launch` 跑兩個 rank。失敗時 `output` 會有各 rank 的錯誤訊息。

# %% nbgrader={"grade": false, "grade_id": "run", "locked": true, "schema_version": 3, "solution": false, "task": false}
train_ddp = importlib.reload(train_ddp)
run = launch("train_ddp.py", ["--out", str(ARTIFACTS / "ddp")], nproc=2)
print(run["output"][-1500:])
metrics = json.loads((ARTIFACTS / "ddp" / "metrics.json").read_text()) if run["returncode"] == 0 else {"losses": []}
print("return code", run["returncode"], "| steps", len(metrics["losses"]))

# %% nbgrader={"grade": true, "grade_id": "test-train", "locked": true, "points": 12, "schema_version": 3, "solution": false, "task": false}
assert run["returncode"] == 0, "torchrun 沒有成功結束：看上面的 output"
assert metrics["losses"][-1] < metrics["losses"][0], "loss 沒有下降"
