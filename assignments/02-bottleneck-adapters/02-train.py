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
# # 02-2 Bottleneck adapter 訓練（Train）
#
# Houlsby et al.（2019, §2.1）的 adapter：
#
# $$ \mathrm{Adapter}(h) = h + W_{up}\,\sigma(W_{down}\, h + b_{down}) + b_{up} $$
#
# 兩個設計重點：
# - **residual（skip connection）**：adapter 的輸出是 $h$ 加上瓶頸路徑，而不是取代 $h$；
# - **up-projection 初始化為 0**：訓練一開始瓶頸路徑輸出 0，adapter 正好是 identity，整個模型與預訓練的 base **完全相同**，
#   訓練從 base 出發，不會一開始就破壞預訓練的表示（論文用接近 0 的初始化，這裡用 0）。
#
# 本 notebook：(1) 從零寫 `Adapter`；(2) 用課程的 `add_bottleneck_adapters`（Houlsby 放法）在 paraphrase 任務上訓練，
# 分類頭也要訓練；(3) 只存 adapter 與分類頭。

# %% nbgrader={"grade": false, "grade_id": "setup", "locked": true, "schema_version": 3, "solution": false, "task": false}
import itertools
import json
from pathlib import Path

import torch
from safetensors.torch import save_file
from torch import nn

from common_utils.adapters.bottleneck import BottleneckConfig, add_bottleneck_adapters
from common_utils.datasets import load_course_dataset
from common_utils.models import default_device, load_model, load_tokenizer
from common_utils.profiles import get_profile
from common_utils.training import to_device

PROFILE = get_profile()
ARTIFACTS = Path("artifacts")
ARTIFACTS.mkdir(exist_ok=True)
tokenizer = load_tokenizer(PROFILE, family="bert")
torch.manual_seed(0)

# %% [markdown] nbgrader={"grade": false, "grade_id": "adapter-md", "locked": true, "schema_version": 3, "solution": false, "task": false}
# ## 1. 從零寫 Adapter
#
# 實作 `Adapter(hidden, bottleneck)`：
# - `down = nn.Linear(hidden, bottleneck)`（預設初始化即可）、`up = nn.Linear(bottleneck, hidden)`，
#   `up` 的 weight 與 bias **都初始化為 0**；
# - 非線性用 ReLU（與課程的 `BottleneckConfig(activation="relu")` 相同）；
# - `forward(h)` 回傳 `h + up(relu(down(h)))`。
#
# 屬性名稱請用 `down`、`up`：grader seam 會用它們放入 grader 選的權重。

# %% nbgrader={"grade": false, "grade_id": "adapter", "locked": false, "schema_version": 3, "solution": true, "task": false}
class Adapter(nn.Module):
    def __init__(self, hidden: int, bottleneck: int):
        super().__init__()
        ### BEGIN SOLUTION
        self.down = nn.Linear(hidden, bottleneck)
        self.up = nn.Linear(bottleneck, hidden)
        nn.init.zeros_(self.up.weight)
        nn.init.zeros_(self.up.bias)
        ### END SOLUTION

    def forward(self, h: torch.Tensor) -> torch.Tensor:
        ### BEGIN SOLUTION
        return h + self.up(torch.relu(self.down(h)))
        ### END SOLUTION


# %% nbgrader={"grade": true, "grade_id": "test-adapter", "locked": true, "points": 6, "schema_version": 3, "solution": false, "task": false}
adapter = Adapter(16, 4)
h = torch.randn(2, 3, 16)
assert torch.equal(adapter(h), h), "up 初始化為 0 時，adapter 應是 identity"
assert sum(p.numel() for p in adapter.parameters()) == 2 * 16 * 4 + 4 + 16, "參數量應為 2·d·m + m + d"

# %% [markdown] nbgrader={"grade": false, "grade_id": "train-md", "locked": true, "schema_version": 3, "solution": false, "task": false}
# ## 2. 訓練迴圈與存檔
#
# 寫 `train(model, batches, max_steps, lr)`：用 `torch.optim.AdamW` 只更新 `requires_grad` 的參數，依序取 `batches`
# （用完從頭再來），每步 forward → `loss.backward()` → `step()` → `zero_grad()`，回傳每一步的 loss（float 的 list）。
# 記得先 `model.train()`。
#
# 再寫 `save_adapters(model, folder, config)`：存 `folder/adapters.safetensors`（只含 `requires_grad` 的參數：
# 所有 adapter 與分類頭，鍵名與 `model.named_parameters()` 相同），以及 `folder/adapter_config.json`：
# `{"method": "bottleneck", "task_type": "SEQ_CLS", "placement": …, "bottleneck_size": …, "activation": …}`（值取自 `config`）。
#
# ⚠️ 分類頭 `classifier` 是新初始化的：`add_bottleneck_adapters` 讓它保持可訓練。原本的課程教材把它凍結了，
# 結果模型只能用一個隨機的分類頭，怎麼訓練 adapter 都學不好。

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


def save_adapters(model: nn.Module, folder: Path, config: BottleneckConfig) -> None:
    ### BEGIN SOLUTION
    folder.mkdir(parents=True, exist_ok=True)
    save_file({n: p.detach().contiguous() for n, p in model.named_parameters() if p.requires_grad},
              folder / "adapters.safetensors")
    settings = {"method": "bottleneck", "task_type": "SEQ_CLS", "placement": config.placement,
                "bottleneck_size": config.bottleneck_size, "activation": config.activation}
    (folder / "adapter_config.json").write_text(json.dumps(settings, indent=2))
    ### END SOLUTION


# %% nbgrader={"grade": false, "grade_id": "data", "locked": true, "schema_version": 3, "solution": false, "task": false}
MAX_STEPS = 300 if PROFILE == "tiny" else 1000
LR = 1e-2 if PROFILE == "tiny" else 1e-4
BATCH_SIZE = 16
CONFIG = BottleneckConfig(bottleneck_size=16, placement="houlsby", activation="relu")

# The held-out split (1 pair in 8) is kept for the grader: it judges your adapters on pairs they never saw.
rows = load_course_dataset("paraphrase", PROFILE, split="train")
order = torch.randperm(len(rows), generator=torch.Generator().manual_seed(0)).tolist()
DEVICE = default_device(PROFILE)  # the GPU under `full`, the CPU under `tiny`: where load_model puts the model
batches = []
for i in range(0, len(order), BATCH_SIZE):
    chunk = [rows[j] for j in order[i:i + BATCH_SIZE]]
    enc = tokenizer([r["sentence1"] for r in chunk], [r["sentence2"] for r in chunk], padding=True, truncation=True,
                    max_length=64, return_tensors="pt")
    batches.append(to_device({"input_ids": enc["input_ids"], "attention_mask": enc["attention_mask"],
                              "labels": torch.tensor([r["label"] for r in chunk])}, DEVICE))
print(f"{len(rows):,} pairs, {len(batches)} batches of {BATCH_SIZE}")

# %% nbgrader={"grade": false, "grade_id": "train-adapters", "locked": true, "schema_version": 3, "solution": false, "task": false}
torch.manual_seed(0)
model = add_bottleneck_adapters(load_model("bert", PROFILE, for_training=True), CONFIG)
n_trainable = sum(p.numel() for p in model.parameters() if p.requires_grad)
n_total = sum(p.numel() for p in model.parameters())
print(f"Houlsby adapters + head: {n_trainable:,} trainable of {n_total:,} ({100 * n_trainable / n_total:.2f}%)")
losses = train(model, batches, MAX_STEPS, LR)
save_adapters(model, ARTIFACTS / "adapters", CONFIG)
(ARTIFACTS / "train_metrics.json").write_text(json.dumps({"losses": losses, "n_trainable": n_trainable,
                                                          "n_total": n_total}, indent=2))
print(f"loss {losses[0]:.3f} -> {losses[-1]:.3f}")

# %% nbgrader={"grade": true, "grade_id": "test-train-adapters", "locked": true, "points": 8, "schema_version": 3, "solution": false, "task": false}
assert (ARTIFACTS / "adapters" / "adapters.safetensors").is_file(), "請把 adapter 存成 adapters.safetensors"
assert sum(losses[-5:]) / 5 < sum(losses[:5]) / 5, "訓練後的 loss 應低於一開始"

# %% [markdown] nbgrader={"grade": false, "grade_id": "grader-seam-md", "locked": true, "schema_version": 3, "solution": false, "task": false}
# ## Grader seam（不用改）
#
# grader 透過下面的函式，把 **它選的** 權重放進你的 `Adapter`，再和課程的 `BottleneckAdapter` 比對。

# %% nbgrader={"grade": false, "grade_id": "grader-seam", "locked": true, "schema_version": 3, "solution": false, "task": false}
def adapter_output(down_weight, down_bias, up_weight, up_bias, h) -> torch.Tensor:
    layer = Adapter(down_weight.shape[1], down_weight.shape[0])
    with torch.no_grad():
        layer.down.weight.copy_(down_weight)
        layer.down.bias.copy_(down_bias)
        layer.up.weight.copy_(up_weight)
        layer.up.bias.copy_(up_bias)
        return layer.eval()(h)


def fresh_adapter(hidden: int, bottleneck: int, h) -> dict:
    """A freshly initialised Adapter: its output on ``h``, its up-projection and its trainable count."""
    torch.manual_seed(0)
    layer = Adapter(hidden, bottleneck)
    with torch.no_grad():
        out = layer.eval()(h)
    return {"output": out, "up_weight": layer.up.weight.detach().clone(), "up_bias": layer.up.bias.detach().clone(),
            "trainable": sum(p.numel() for p in layer.parameters() if p.requires_grad)}
