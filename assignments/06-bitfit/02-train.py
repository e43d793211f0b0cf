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
# # 06-2 BitFit 訓練（Train）
#
# BitFit 的想法很簡單：Transformer 裡每個線性層與 LayerNorm 都是 $y = W x + b$（或 $\gamma \odot \hat{x} + b$），
# 微調時 **只更新 $b$**。論文（Ben Zaken et al., 2022, §3）的觀察是：預訓練模型已經學會了大部分的特徵，
# 新任務只需要「平移」各層的 activation；bias 不到全部參數的 0.1%（BERT-base），卻能在 GLUE 上接近 full fine-tuning。
#
# peft 沒有 BitFit（LoRA 的 `bias="all"` 會 *另外* 訓練 LoRA 矩陣，不是同一件事），所以課程自己寫了
# `common_utils.adapters.bitfit.apply_bitfit`，照論文原始程式碼（`bias_terms="all"`）的做法：所有 bias 加上分類頭。
#
# 本 notebook：(1) 從零寫 `bitfit(model)`；(2) 和課程的 `apply_bitfit` 比對；(3) 訓練並只存下可訓練的參數。

# %% nbgrader={"grade": false, "grade_id": "setup", "locked": true, "schema_version": 3, "solution": false, "task": false}
import itertools
import json
from pathlib import Path

import torch
from safetensors.torch import save_file
from torch import nn

from common_utils.adapters.bitfit import apply_bitfit
from common_utils.datasets import load_course_dataset
from common_utils.models import default_device, load_model, load_tokenizer
from common_utils.profiles import get_profile
from common_utils.training import to_device

PROFILE = get_profile()
ARTIFACTS = Path("artifacts")
ARTIFACTS.mkdir(exist_ok=True)
tokenizer = load_tokenizer(PROFILE, family="bert")
torch.manual_seed(0)

# %% [markdown] nbgrader={"grade": false, "grade_id": "bitfit-md", "locked": true, "schema_version": 3, "solution": false, "task": false}
# ## 1. 從零寫 BitFit
#
# 實作 `bitfit(model, head="classifier")`：
# - 每個名稱以 `.bias` 結尾的參數設成 `requires_grad=True`；
# - 分類頭（最上層名為 `head` 的模組，例如 `classifier.weight`、`classifier.bias`）也要可訓練；
# - 其餘參數全部凍結（`requires_grad=False`），包括 LayerNorm 的 `weight`；
# - 模型 **沒有任何 bias**（例如 Llama-family 的線性層都沒有 bias）時，BitFit 沒有東西可訓練：
#   請 `raise ValueError(...)`，訊息要說明原因（提到 bias），而不是默默只訓練分類頭。
#
# 回傳同一個 `model`。

# %% nbgrader={"grade": false, "grade_id": "bitfit", "locked": false, "schema_version": 3, "solution": true, "task": false}
def bitfit(model: nn.Module, head: str = "classifier") -> nn.Module:
    ### BEGIN SOLUTION
    if not any(name.endswith(".bias") for name, _ in model.named_parameters()):
        raise ValueError(f"{type(model).__name__} has no bias parameters: BitFit would train nothing but the head")
    for name, param in model.named_parameters():
        param.requires_grad_(name.endswith(".bias") or name.split(".")[0] == head)
    return model
    ### END SOLUTION


# %% nbgrader={"grade": true, "grade_id": "test-bitfit", "locked": true, "points": 5, "schema_version": 3, "solution": false, "task": false}
toy = nn.Sequential(nn.Linear(4, 3), nn.LayerNorm(3))
bitfit(toy, head="none")
assert [n for n, p in toy.named_parameters() if p.requires_grad] == ["0.bias", "1.bias"], \
    "只有 bias 可訓練：LayerNorm 的 weight 要凍結"
try:
    bitfit(nn.Sequential(nn.Linear(4, 3, bias=False)), head="none")
except ValueError:
    pass
else:
    raise AssertionError("沒有 bias 的模型應該 raise ValueError")

# %% [markdown] nbgrader={"grade": false, "grade_id": "train-md", "locked": true, "schema_version": 3, "solution": false, "task": false}
# ## 2. 訓練迴圈與存檔
#
# 寫 `train(model, batches, max_steps, lr)`：用 `torch.optim.AdamW` 只更新 `requires_grad` 的參數，
# 依序取 `batches`（用完從頭再來），每步 forward → `loss.backward()` → `step()` → `zero_grad()`，
# 回傳每一步的 loss（Python float 的 list）。記得先 `model.train()`。
#
# BitFit 的學習率比 full fine-tuning 大（論文用 $10^{-4}$ 到 $10^{-3}$，tiny 模型用更大的值）：只動 bias，需要走得遠一點。
#
# 再寫 `save_bitfit(model, folder)`：BitFit 的「adapter」就是那些可訓練的張量。存成
# `folder/bitfit.safetensors`（只含 `requires_grad` 的參數，鍵名與 `model.named_parameters()` 相同），
# 以及 `folder/bitfit_config.json`：`{"method": "bitfit", "task_type": "SEQ_CLS", "base_family": "bert", "head": "classifier"}`。
# 不要存整個模型：每個任務只需要這一小組向量，這正是 BitFit 的價值。

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


def save_bitfit(model: nn.Module, folder: Path) -> None:
    ### BEGIN SOLUTION
    folder.mkdir(parents=True, exist_ok=True)
    tensors = {name: p.detach().contiguous() for name, p in model.named_parameters() if p.requires_grad}
    save_file(tensors, folder / "bitfit.safetensors")
    config = {"method": "bitfit", "task_type": "SEQ_CLS", "base_family": "bert", "head": "classifier"}
    (folder / "bitfit_config.json").write_text(json.dumps(config, indent=2))
    ### END SOLUTION


# %% nbgrader={"grade": false, "grade_id": "data", "locked": true, "schema_version": 3, "solution": false, "task": false}
MAX_STEPS = 200 if PROFILE == "tiny" else 600
LR = 1e-2 if PROFILE == "tiny" else 5e-4
BATCH_SIZE = 16

# The held-out split (1 row in 8) is kept for the grader: it judges your parameters on rows they never saw.
rows = load_course_dataset("sentiment", PROFILE, split="train")
order = torch.randperm(len(rows), generator=torch.Generator().manual_seed(0)).tolist()
batches = []
for i in range(0, len(order), BATCH_SIZE):
    chunk = [rows[j] for j in order[i:i + BATCH_SIZE]]
    enc = tokenizer([r["text"] for r in chunk], padding=True, truncation=True, max_length=64, return_tensors="pt")
    batches.append({**enc, "labels": torch.tensor([r["label"] for r in chunk])})
DEVICE = default_device(PROFILE)  # the GPU under `full`, the CPU under `tiny`: where load_model puts the model
batches = [to_device({k: v for k, v in b.items() if k != "token_type_ids"}, DEVICE) for b in batches]
print(f"{len(rows):,} rows, {len(batches)} batches of {BATCH_SIZE}")

# %% nbgrader={"grade": false, "grade_id": "train-bitfit", "locked": true, "schema_version": 3, "solution": false, "task": false}
torch.manual_seed(0)
model = apply_bitfit(load_model("bert", PROFILE, for_training=True))  # the course's BitFit
mine = bitfit(load_model("bert", PROFILE))                            # yours, on an identical base
ours = sorted(n for n, p in model.named_parameters() if p.requires_grad)
yours = sorted(n for n, p in mine.named_parameters() if p.requires_grad)
print("your bitfit() trains the same parameters as apply_bitfit:", ours == yours)
n_trainable = sum(p.numel() for p in model.parameters() if p.requires_grad)
n_total = sum(p.numel() for p in model.parameters())
print(f"BitFit: {n_trainable:,} trainable of {n_total:,} ({100 * n_trainable / n_total:.2f}%)")

losses = train(model, batches, MAX_STEPS, LR)
save_bitfit(model, ARTIFACTS / "bitfit")
(ARTIFACTS / "train_metrics.json").write_text(json.dumps({"losses": losses, "n_trainable": n_trainable,
                                                          "n_total": n_total}, indent=2))
print(f"loss {losses[0]:.3f} -> {losses[-1]:.3f}")

# %% nbgrader={"grade": true, "grade_id": "test-train-bitfit", "locked": true, "points": 8, "schema_version": 3, "solution": false, "task": false}
assert (ARTIFACTS / "bitfit" / "bitfit.safetensors").is_file(), "請把可訓練的參數存成 bitfit.safetensors"
assert sum(losses[-5:]) / 5 < sum(losses[:5]) / 5, "訓練後的 loss 應低於一開始"

# %% [markdown] nbgrader={"grade": false, "grade_id": "grader-seam-md", "locked": true, "schema_version": 3, "solution": false, "task": false}
# ## Grader seam（不用改）
#
# grader 透過下面的函式，在 **它選的** 模型上呼叫你的 `bitfit`，再和課程的 `apply_bitfit` 比對。

# %% nbgrader={"grade": false, "grade_id": "grader-seam", "locked": true, "schema_version": 3, "solution": false, "task": false}
def bitfit_trainable_on(num_labels: int, bias_free_layers: list[int]) -> list[str]:
    """Names your bitfit() leaves trainable on the profile's BERT with a fresh head of
    ``num_labels`` outputs, whose FFN input layer has no bias in the blocks ``bias_free_layers``."""
    probe = load_model("bert", PROFILE)
    probe.classifier = nn.Linear(probe.config.hidden_size, num_labels)
    for i in bias_free_layers:
        dense = probe.bert.encoder.layer[i].intermediate.dense
        probe.bert.encoder.layer[i].intermediate.dense = nn.Linear(dense.in_features, dense.out_features, bias=False)
    return sorted(n for n, p in bitfit(probe).named_parameters() if p.requires_grad)


def bitfit_refusal() -> dict:
    """What your bitfit() does with the profile's Llama, which has no bias terms."""
    try:
        probe = bitfit(load_model("llama", PROFILE), head="score")
    except Exception as err:  # the grader judges the type and the message
        return {"raised": True, "error": type(err).__name__, "message": str(err)}
    return {"raised": False, "error": "", "message": "",
            "trainable": sum(p.numel() for p in probe.parameters() if p.requires_grad)}
