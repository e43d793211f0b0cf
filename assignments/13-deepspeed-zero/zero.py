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
# # 1.3 DeepSpeed ZeRO：把優化器狀態、gradient、參數切給各 rank
#
# 資料平行（1.2）讓每個 rank 放一份完整的模型狀態。**ZeRO**（Rajbhandari et al., 2020,
# *ZeRO: Memory Optimizations Toward Training Trillion Parameter Models*）把它切開：
# - stage 1：每個 rank 只留 1/N 的 **優化器狀態**（Adam 的 fp32 主權重、momentum、variance）；
# - stage 2：再切 **gradient**；
# - stage 3：連 **參數** 也切，forward/backward 時才把需要的那層 gather 回來。
#
# 本作業在 CPU 上用 gloo 跑兩個 rank，全參數微調 tiny Llama：
# 1. 寫 DeepSpeed 設定與一致性檢查；2. 寫 engine 的訓練迴圈（含 gradient accumulation），並存出
# 合併成 fp32 的 checkpoint；3. 寫 ZeRO 論文的記憶體公式，和 DeepSpeed 自己的估算比較。

# %% nbgrader={"grade": false, "grade_id": "setup", "locked": true, "schema_version": 3, "solution": false, "task": false}
import importlib
import json
from pathlib import Path

import torch

from common_utils.distributed import launch_torchrun
from common_utils.profiles import get_profile

PROFILE = get_profile()
ARTIFACTS = Path("artifacts")
ARTIFACTS.mkdir(exist_ok=True)
print("profile:", PROFILE, "| torch:", torch.__version__)

# %% [markdown] nbgrader={"grade": false, "grade_id": "config-md", "locked": true, "schema_version": 3, "solution": false, "task": false}
# ## 1. DeepSpeed 設定（寫進訓練 script `train_zero.py` 的開頭）
#
# DeepSpeed 的 batch 有三個數字，必須滿足
# `train_batch_size = train_micro_batch_size_per_gpu × gradient_accumulation_steps × world_size`。
# - `make_config(stage, micro_batch, accumulation, world, bf16=False)` 回傳設定 dict：上面三個 batch 欄位、
#   `"zero_optimization": {"stage": stage}`、`"bf16": {"enabled": bf16}`、
#   `"zero_allow_untested_optimizer": True`（我們自己傳 torch 的 AdamW 進去，DeepSpeed 就不會去編譯它的
#   fused Adam）、`"gradient_clipping": 0.0`。
# - `check_config(config, world)`：三個數字不一致時 `raise ValueError`，訊息寫出三個數字的乘積與
#   `train_batch_size`（例如 `train_batch_size 8 != 2 × 2 × 4 = 16`）；一致時什麼都不做。

# %% nbgrader={"grade": false, "grade_id": "config", "locked": false, "schema_version": 3, "solution": true, "task": false}
# %%writefile train_zero.py
"""Full fine-tuning of the tiny Llama with DeepSpeed ZeRO stages 1-3.

Launch: torchrun --nproc_per_node 2 train_zero.py --stages 1 2 3 --out artifacts/zero
"""
import argparse
import json
from pathlib import Path

import deepspeed
import torch
import torch.distributed as dist
from safetensors.torch import save_file

from common_utils.distributed import no_jit_comm_op

no_jit_comm_op()


def make_config(stage: int, micro_batch: int, accumulation: int, world: int, bf16: bool = False) -> dict:
    ### BEGIN SOLUTION
    return {
        "train_batch_size": micro_batch * accumulation * world,
        "train_micro_batch_size_per_gpu": micro_batch,
        "gradient_accumulation_steps": accumulation,
        "zero_optimization": {"stage": stage},
        "bf16": {"enabled": bf16},
        "zero_allow_untested_optimizer": True,
        "gradient_clipping": 0.0,
    }
    ### END SOLUTION


def check_config(config: dict, world: int) -> None:
    """Refuse a config whose batch sizes disagree, saying which numbers."""
    ### BEGIN SOLUTION
    micro, accumulation = config["train_micro_batch_size_per_gpu"], config["gradient_accumulation_steps"]
    total = config["train_batch_size"]
    if total != micro * accumulation * world:
        raise ValueError(f"train_batch_size {total} != {micro} × {accumulation} × {world} = {micro * accumulation * world}")
    ### END SOLUTION


# %% nbgrader={"grade": false, "grade_id": "import-script", "locked": true, "schema_version": 3, "solution": false, "task": false}
import train_zero  # noqa: E402  (written by the cell above; reloaded after every edit)

train_zero = importlib.reload(train_zero)
make_config, check_config = train_zero.make_config, train_zero.check_config

# %% nbgrader={"grade": true, "grade_id": "test-config", "locked": true, "points": 5, "schema_version": 3, "solution": false, "task": false}
config = make_config(2, micro_batch=2, accumulation=3, world=2)
assert config["train_batch_size"] == 12, f"2 × 3 × 2 = 12，實際 {config['train_batch_size']}"
check_config(config, world=2)
try:
    check_config(config, world=4)
except ValueError as err:
    print("refused:", err)
else:
    raise AssertionError("world=4 時 train_batch_size 12 不一致，check_config 應該 raise ValueError")

# %% [markdown] nbgrader={"grade": false, "grade_id": "script-md", "locked": true, "schema_version": 3, "solution": false, "task": false}
# ## 2. engine 與訓練迴圈（接著寫進 `train_zero.py`）
#
# - `build_engine(model, config, lr)`：`deepspeed.initialize(model=…, optimizer=torch.optim.AdamW(model.parameters(), lr=lr), config=…)`，
#   回傳 engine。傳入 torch 的 optimizer，DeepSpeed 就不必 JIT 編譯自己的 Adam。
# - `train_steps(engine, micro_batches)`：每個 micro-batch（一個 `input_ids` tensor，labels 就是它自己）做
#   `loss = engine(input_ids=ids, labels=ids).loss` → `engine.backward(loss)` → `engine.step()`。
#   engine 自己知道 `gradient_accumulation_steps`：它在 backward 時把 loss 除以累積步數，只在邊界才真的更新。
#   回傳每個 micro-batch 的 loss（float 的 list）。
# - `save_fp32(engine, folder)`：`engine.save_checkpoint(folder)`（每個 rank 都要呼叫：各自存自己那份），
#   接著 `dist.barrier()`，然後 **只有 rank 0** 用 DeepSpeed 的 zero-to-fp32 路徑
#   `get_fp32_state_dict_from_zero_checkpoint(folder)` 把各 rank 的分片合成完整的 fp32 權重，
#   存成 `folder/model.safetensors`（safetensors 不接受共用記憶體的 tensor：先 `.clone()`）；最後再 barrier。

# %% nbgrader={"grade": false, "grade_id": "script", "locked": false, "schema_version": 3, "solution": true, "task": false}
# %%writefile -a train_zero.py


def build_engine(model: torch.nn.Module, config: dict, lr: float):
    ### BEGIN SOLUTION
    optimizer = torch.optim.AdamW(model.parameters(), lr=lr)
    engine, _, _, _ = deepspeed.initialize(model=model, optimizer=optimizer, config=config)
    return engine
    ### END SOLUTION


def train_steps(engine, micro_batches: list) -> list[float]:
    ### BEGIN SOLUTION
    losses = []
    for ids in micro_batches:
        loss = engine(input_ids=ids, labels=ids).loss
        engine.backward(loss)
        engine.step()
        losses.append(loss.item())
    return losses
    ### END SOLUTION


def save_fp32(engine, folder: str) -> None:
    ### BEGIN SOLUTION
    from deepspeed.utils.zero_to_fp32 import get_fp32_state_dict_from_zero_checkpoint

    engine.save_checkpoint(folder)
    dist.barrier()
    if dist.get_rank() == 0:
        state = get_fp32_state_dict_from_zero_checkpoint(folder)
        save_file({k: v.clone().contiguous() for k, v in state.items()}, str(Path(folder) / "model.safetensors"))
    dist.barrier()
    ### END SOLUTION


# %% [markdown] nbgrader={"grade": false, "grade_id": "main-md", "locked": true, "schema_version": 3, "solution": false, "task": false}
# ## 3. 組起來：每個 stage 各訓練幾步
#
# 這段已經寫好：每個 stage 從同一個初始模型開始，在同樣的資料上訓練，rank 0 記下 loss。
# 三個 stage 的 loss 應該幾乎一樣：ZeRO 只改變狀態放在哪裡，不改變數學。

# %% nbgrader={"grade": false, "grade_id": "main", "locked": true, "schema_version": 3, "solution": false, "task": false}
# %%writefile -a train_zero.py


def main() -> None:
    from common_utils.models import load_model

    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--stages", type=int, nargs="+", default=[1, 2, 3])
    parser.add_argument("--out", default="artifacts/zero")
    parser.add_argument("--steps", type=int, default=3, help="optimizer steps per stage")
    parser.add_argument("--bf16", action="store_true", help="bf16 mixed precision (fp32 master weights)")
    args = parser.parse_args()

    deepspeed.init_distributed(dist_backend="gloo")
    rank, world = dist.get_rank(), dist.get_world_size()
    micro, accumulation, length = 2, 2, 32
    ids = torch.randint(0, 512, (args.steps * accumulation * world * micro, length), generator=torch.Generator().manual_seed(0))
    report = {}
    for stage in args.stages:
        config = make_config(stage, micro, accumulation, world, bf16=args.bf16)
        check_config(config, world)
        engine = build_engine(load_model("llama", "tiny"), config, lr=1e-3)
        mine = ids.view(-1, world, micro, length)[:, rank]  # micro-batch i of every rank, this rank's slice
        report[stage] = train_steps(engine, list(mine))
        if rank == 0:
            print(f"stage {stage}: losses {[round(x, 4) for x in report[stage]]}", flush=True)
    if rank == 0:
        Path(args.out).mkdir(parents=True, exist_ok=True)
        (Path(args.out) / "losses.json").write_text(json.dumps(report))
    dist.destroy_process_group()


if __name__ == "__main__":
    main()

# %% nbgrader={"grade": false, "grade_id": "run", "locked": true, "schema_version": 3, "solution": false, "task": false}
train_zero = importlib.reload(train_zero)
run = launch_torchrun("train_zero.py", ["--stages", "1", "2", "3", "--out", str(ARTIFACTS / "zero")], nproc=2)
print(run["output"][-1500:])
losses = json.loads((ARTIFACTS / "zero" / "losses.json").read_text()) if run["returncode"] == 0 else {}
print({stage: [round(x, 4) for x in values] for stage, values in losses.items()})

# %% nbgrader={"grade": true, "grade_id": "test-train", "locked": true, "points": 10, "schema_version": 3, "solution": false, "task": false}
assert run["returncode"] == 0, "torchrun 沒有成功結束：看上面的 output"
assert set(losses) == {"1", "2", "3"}, f"應有 stage 1、2、3 的 loss，實際 {sorted(losses)}"

# %% [markdown] nbgrader={"grade": false, "grade_id": "memory-md", "locked": true, "schema_version": 3, "solution": false, "task": false}
# ## 4. 記憶體公式
#
# 混合精度 Adam 訓練 $\Psi$ 個參數時，每個 rank 的模型狀態（不含 activation）在 ZeRO 論文裡是
# $2\Psi$（16-bit 參數）$+ 2\Psi$（16-bit gradient）$+ K\Psi$（優化器狀態；fp32 主權重、momentum、
# variance 共 $K = 12$）。$N$ 個 rank 時：
#
# | stage | 每個 rank 的 bytes |
# | --- | --- |
# | 0（DDP） | $(2 + 2 + K)\Psi$ |
# | 1 | $2\Psi + 2\Psi + K\Psi/N$ |
# | 2 | $2\Psi + (2 + K)\Psi/N$ |
# | 3 | $(2 + 2 + K)\Psi/N$ |
#
# 寫 `zero_model_state_bytes(n_params, stage, world, k=12)`，回傳上表的值（float）。
# DeepSpeed 的估算函式 `estimate_zero2_model_states_mem_needs` 另外算進 fp32 gradient（每個參數多 4 bytes），
# 相當於 $K = 16$：grader 會用 `full` profile 的模型形狀（只讀設定，不載權重）比對兩者。

# %% nbgrader={"grade": false, "grade_id": "memory", "locked": false, "schema_version": 3, "solution": true, "task": false}
def zero_model_state_bytes(n_params: int, stage: int, world: int, k: float = 12) -> float:
    ### BEGIN SOLUTION
    psi = float(n_params)
    if stage == 0:
        return (2 + 2 + k) * psi
    if stage == 1:
        return 2 * psi + 2 * psi + k * psi / world
    if stage == 2:
        return 2 * psi + (2 + k) * psi / world
    if stage == 3:
        return (2 + 2 + k) * psi / world
    raise ValueError(f"ZeRO stage {stage!r}: use 0, 1, 2 or 3")
    ### END SOLUTION


# %% nbgrader={"grade": true, "grade_id": "test-memory", "locked": true, "points": 2, "schema_version": 3, "solution": false, "task": false}
psi = 7_000_000_000
print({s: f"{zero_model_state_bytes(psi, s, 8) / 2**30:.1f} GiB" for s in range(4)})
assert zero_model_state_bytes(psi, 0, 8) == 16 * psi, "stage 0 應是 16Ψ bytes（2 + 2 + 12）"
