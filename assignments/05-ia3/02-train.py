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
# # 05-2 IA3 訓練（Train）
#
# IA3 把一個凍結的線性層 $y = Wx + b$ 包起來，學一個向量 $l$：
# - **keys、values**（`k_proj`、`v_proj`）：縮放 **輸出**，$y = l \odot (Wx + b)$；
# - **feed-forward**（`down_proj`）：縮放 **輸入**，也就是 FFN 的中間 activation，$y = W(l \odot x) + b$。
#
# 論文（Liu et al., 2022, §3.3）把 $l_{ff}$ 乘在 $\gamma(W_1 x)$ 上，也就是第二個 FFN 矩陣的輸入；peft 用
# `feedforward_modules=["down_proj"]` 表示同一件事。$l$ 初始化為 1，所以訓練起點就是 base。
#
# 本 notebook：(1) 從零寫 `IA3Linear`；(2) 用 peft 的 `IA3Config` 設定同樣的位置；(3) 訓練並存 adapter。

# %% nbgrader={"grade": false, "grade_id": "setup", "locked": true, "schema_version": 3, "solution": false, "task": false}
import itertools
import json
import warnings
from pathlib import Path

import torch
from peft import IA3Config, get_peft_model
from torch import nn
from torch.utils.data import DataLoader

from common_utils.datasets import load_course_dataset
from common_utils.instruct import InstructionDataCollator, InstructionDataset
from common_utils.models import default_device, load_model, load_tokenizer
from common_utils.profiles import get_profile
from common_utils.training import to_device

warnings.filterwarnings("ignore", category=FutureWarning)  # transformers 5 renames; not the lesson here
PROFILE = get_profile()
ARTIFACTS = Path("artifacts")
ARTIFACTS.mkdir(exist_ok=True)
tokenizer = load_tokenizer(PROFILE)
torch.manual_seed(0)

# %% [markdown] nbgrader={"grade": false, "grade_id": "ia3-md", "locked": true, "schema_version": 3, "solution": false, "task": false}
# ## 1. 從零寫 IA3Linear
#
# 實作 `IA3Linear(base, feedforward)`：
# - 凍結 `base`（一個 `nn.Linear`）的所有參數；
# - `ia3_l`：一維的 `nn.Parameter`，**初始化為 1**；`feedforward=True` 時長度是 `in_features`，否則是 `out_features`；
# - forward：`feedforward=True` 時 `base(x * ia3_l)`，否則 `base(x) * ia3_l`。

# %% nbgrader={"grade": false, "grade_id": "ia3-layer", "locked": false, "schema_version": 3, "solution": true, "task": false}
class IA3Linear(nn.Module):
    def __init__(self, base: nn.Linear, feedforward: bool):
        super().__init__()
        ### BEGIN SOLUTION
        self.base = base
        self.base.requires_grad_(False)
        self.feedforward = feedforward
        self.ia3_l = nn.Parameter(torch.ones(base.in_features if feedforward else base.out_features))
        ### END SOLUTION

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        ### BEGIN SOLUTION
        if self.feedforward:
            return self.base(x * self.ia3_l)
        return self.base(x) * self.ia3_l
        ### END SOLUTION


# %% nbgrader={"grade": true, "grade_id": "test-ia3-layer", "locked": true, "points": 6, "schema_version": 3, "solution": false, "task": false}
layer = IA3Linear(nn.Linear(6, 4), feedforward=True)
assert tuple(layer.ia3_l.shape) == (6,), "feed-forward 的 l 長度是 in_features"
x = torch.randn(3, 6)
assert torch.equal(layer(x), layer.base(x)), "l = 1 時輸出應與 base 完全相同"

# %% [markdown] nbgrader={"grade": false, "grade_id": "config-md", "locked": true, "schema_version": 3, "solution": false, "task": false}
# ## 2. 用 peft 設定 IA3
#
# 寫 `make_ia3_config()`，回傳 `peft.IA3Config`：`target_modules` 是 `k_proj`、`v_proj`、`down_proj`，
# `feedforward_modules` 是 `down_proj`（只有它縮放輸入），`task_type="CAUSAL_LM"`。

# %% nbgrader={"grade": false, "grade_id": "ia3-config", "locked": false, "schema_version": 3, "solution": true, "task": false}
def make_ia3_config() -> IA3Config:
    ### BEGIN SOLUTION
    return IA3Config(target_modules=["k_proj", "v_proj", "down_proj"], feedforward_modules=["down_proj"],
                     task_type="CAUSAL_LM")
    ### END SOLUTION


# %% [markdown] nbgrader={"grade": false, "grade_id": "train-md", "locked": true, "schema_version": 3, "solution": false, "task": false}
# ## 3. 訓練迴圈
#
# 寫 `train(model, batches, max_steps, lr)`：用 `torch.optim.AdamW` 只更新 `requires_grad` 的參數，
# 依序取 `batches`（用完從頭再來），每步 forward → `loss.backward()` → `step()` → `zero_grad()`，
# 回傳每一步的 loss（Python float 的 list）。記得先 `model.train()`。
# IA3 只學幾個向量（tiny 上每層 256 個數），而且從 1 出發，學習率要比 LoRA 大。

# %% nbgrader={"grade": false, "grade_id": "train-loop", "locked": false, "schema_version": 3, "solution": true, "task": false}
def train(model: nn.Module, batches: list[dict], max_steps: int, lr: float) -> list[float]:
    ### BEGIN SOLUTION
    optimizer = torch.optim.AdamW([p for p in model.parameters() if p.requires_grad], lr=lr)
    model.train()
    losses = []
    for _, batch in zip(range(max_steps), itertools.cycle(batches)):
        loss = model(**batch).loss
        loss.backward()
        optimizer.step()
        optimizer.zero_grad()
        losses.append(loss.item())
    return losses
    ### END SOLUTION


# %% nbgrader={"grade": false, "grade_id": "data", "locked": true, "schema_version": 3, "solution": false, "task": false}
MAX_STEPS = 100 if PROFILE == "tiny" else 500
LR = 1e-2 if PROFILE == "tiny" else 3e-3
BATCH_SIZE = 8 if PROFILE == "tiny" else 4

# The held-out split (1 row in 8) is kept for the grader: it judges your adapter on rows it never saw.
rows = load_course_dataset("instructions", PROFILE, split="train")
dataset = InstructionDataset(rows, tokenizer, template="alpaca", max_length=128)
loader = DataLoader(dataset, batch_size=BATCH_SIZE, shuffle=True, collate_fn=InstructionDataCollator(tokenizer, pad_to_multiple_of=8),
                    generator=torch.Generator().manual_seed(0))
DEVICE = default_device(PROFILE)  # the GPU under `full`, the CPU under `tiny`: where load_model puts the model
batches = [to_device(batch, DEVICE) for _, batch in zip(range(MAX_STEPS), itertools.cycle(loader))]
print(f"{len(dataset):,} examples, {len(batches)} batches of {BATCH_SIZE}")

# %% nbgrader={"grade": false, "grade_id": "train-ia3", "locked": true, "schema_version": 3, "solution": false, "task": false}
torch.manual_seed(0)
model = get_peft_model(load_model("llama", PROFILE, for_training=True), make_ia3_config())
n_trainable = sum(p.numel() for p in model.parameters() if p.requires_grad)
n_total = sum(p.numel() for p in model.parameters())
print(f"IA3: {n_trainable:,} trainable of {n_total:,} ({100 * n_trainable / n_total:.3f}%)")
losses = train(model, batches, MAX_STEPS, LR)
model.save_pretrained(ARTIFACTS / "ia3-adapter", safe_serialization=True)
(ARTIFACTS / "train_metrics.json").write_text(json.dumps({"losses": losses, "n_trainable": n_trainable,
                                                          "n_total": n_total}, indent=2))
print(f"loss {losses[0]:.3f} -> {losses[-1]:.3f}")

# %% nbgrader={"grade": true, "grade_id": "test-train-ia3", "locked": true, "points": 5, "schema_version": 3, "solution": false, "task": false}
assert (ARTIFACTS / "ia3-adapter" / "adapter_model.safetensors").is_file(), "adapter 應存成 safetensors"
assert sum(losses[-5:]) / 5 < sum(losses[:5]) / 5, "訓練後的 loss 應低於一開始"

# %% [markdown] nbgrader={"grade": false, "grade_id": "grader-seam-md", "locked": true, "schema_version": 3, "solution": false, "task": false}
# ## Grader seam（不用改）

# %% nbgrader={"grade": false, "grade_id": "grader-seam", "locked": true, "schema_version": 3, "solution": false, "task": false}
def ia3_output(weight, bias, ia3_l, x, feedforward: bool) -> torch.Tensor:
    base = nn.Linear(weight.shape[1], weight.shape[0])
    with torch.no_grad():
        base.weight.copy_(weight)
        base.bias.copy_(bias)
    layer = IA3Linear(base, feedforward=feedforward)
    with torch.no_grad():
        layer.ia3_l.copy_(ia3_l)
        return layer(x)


def fresh_ia3(d_in: int, d_out: int, feedforward: bool, x) -> dict:
    torch.manual_seed(0)
    layer = IA3Linear(nn.Linear(d_in, d_out), feedforward=feedforward)
    with torch.no_grad():
        return {"ia3_l": layer.ia3_l.detach().clone(), "output": layer(x), "base_output": layer.base(x),
                "trainable": sum(p.numel() for p in layer.parameters() if p.requires_grad)}
