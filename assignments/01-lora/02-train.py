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
# # 01-2 LoRA 與 QLoRA 訓練（Train）
#
# **LoRA**（Hu et al., 2021, *LoRA: Low-Rank Adaptation of Large Language Models*）凍結預訓練權重
# $W \in \mathbb{R}^{d_{out} \times d_{in}}$，只訓練一對低秩矩陣 $A \in \mathbb{R}^{r \times d_{in}}$、
# $B \in \mathbb{R}^{d_{out} \times r}$：
#
# $$ h = W x + \frac{\alpha}{r} B A x $$
#
# $B$ 初始化為 0，所以訓練開始時模型與原本完全相同。**QLoRA**（Dettmers et al., 2023）再把凍結的
# base model 量化成 4-bit NF4，LoRA 參數仍以較高精度訓練，大幅降低記憶體。
#
# 本 notebook：(1) 從零寫 `LoRALinear`；(2) 用 peft 設定 LoRA；(3) 在全精度與 nf4 base 上訓練並存檔。

# %% nbgrader={"grade": false, "grade_id": "setup", "locked": true, "schema_version": 3, "solution": false, "task": false}
import itertools
import json
import warnings
import math
from pathlib import Path

import torch
from peft import LoraConfig, get_peft_model, prepare_model_for_kbit_training
from torch import nn
from torch.utils.data import DataLoader

from common_utils.datasets import load_course_dataset
from common_utils.instruct import InstructionDataCollator, InstructionDataset
from common_utils.models import default_device, load_model, load_tokenizer
from common_utils.monitor import ThroughputMeter, memory_report
from common_utils.profiles import get_profile

warnings.filterwarnings("ignore", category=FutureWarning)  # transformers 5 renames; not the lesson here
PROFILE = get_profile()
ARTIFACTS = Path("artifacts")
ARTIFACTS.mkdir(exist_ok=True)
tokenizer = load_tokenizer(PROFILE)
torch.manual_seed(0)

# %% [markdown] nbgrader={"grade": false, "grade_id": "lora-layer-md", "locked": true, "schema_version": 3, "solution": false, "task": false}
# ## 1. 從零寫一個 LoRA 線性層
#
# 實作 `LoRALinear(base, r, alpha, dropout)`：
# - 凍結 `base`（一個 `nn.Linear`）的所有參數。
# - `lora_A`：形狀 `(r, in_features)` 的 `nn.Parameter`，用 `nn.init.kaiming_uniform_(…, a=math.sqrt(5))`
#   初始化（與 peft 相同）。
# - `lora_B`：形狀 `(out_features, r)` 的 `nn.Parameter`，**初始化為 0**。
# - `scaling = alpha / r`（浮點除法：alpha 不一定是 r 的倍數）。
# - forward：`base(x) + scaling * (dropout(x) @ A^T @ B^T)`，dropout 只作用在 LoRA 這條路徑上，
#   而且只在 `train()` 模式下作用，`eval()` 時不做 dropout（`nn.Dropout` 會自動處理）。
#
# 屬性名稱請用 `lora_A`、`lora_B`：下面鎖定的 cell 與 grader 都會用到。

# %% nbgrader={"grade": false, "grade_id": "lora-layer", "locked": false, "schema_version": 3, "solution": true, "task": false}
class LoRALinear(nn.Module):
    def __init__(self, base: nn.Linear, r: int, alpha: float, dropout: float = 0.0):
        super().__init__()
        ### BEGIN SOLUTION
        self.base = base
        for p in self.base.parameters():
            p.requires_grad_(False)
        self.r, self.alpha = r, alpha
        self.scaling = alpha / r
        self.lora_A = nn.Parameter(torch.empty(r, base.in_features))
        self.lora_B = nn.Parameter(torch.zeros(base.out_features, r))
        nn.init.kaiming_uniform_(self.lora_A, a=math.sqrt(5))
        self.dropout = nn.Dropout(dropout)
        ### END SOLUTION

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        ### BEGIN SOLUTION
        return self.base(x) + self.scaling * (self.dropout(x) @ self.lora_A.T @ self.lora_B.T)
        ### END SOLUTION


# %% nbgrader={"grade": true, "grade_id": "test-lora-layer", "locked": true, "points": 7, "schema_version": 3, "solution": false, "task": false}
layer = LoRALinear(nn.Linear(16, 8), r=4, alpha=8)
assert tuple(layer.lora_A.shape) == (4, 16) and tuple(layer.lora_B.shape) == (8, 4), "lora_A / lora_B 形狀錯誤"
assert torch.all(layer.lora_B == 0), "lora_B 應初始化為 0"
x = torch.randn(3, 16)
assert torch.allclose(layer(x), layer.base(x)), "B = 0 時輸出應與 base 相同"

# %% [markdown] nbgrader={"grade": false, "grade_id": "config-md", "locked": true, "schema_version": 3, "solution": false, "task": false}
# ## 2. 用 peft 設定 LoRA
#
# 寫 `make_lora_config()`，回傳 `peft.LoraConfig`：`r=8`、`lora_alpha=16`、`lora_dropout=0.05`、
# 只套在 attention 的 `q_proj` 與 `v_proj`、`bias="none"`、`task_type="CAUSAL_LM"`。
#
# 再寫 `count_trainable(model)`，回傳 `(trainable, total)` 兩個整數：所有 `requires_grad` 參數的個數，
# 以及全部參數的個數。grader 會在 **它自己選的** 模型（不同的 r、target_modules，有時還多解凍幾個參數）
# 上呼叫你的函式，再和它自己算的結果比對。
#
# 最後寫 `save_adapter(model, folder)`：只存 adapter（不是整個 base model），格式必須是 safetensors
# （`adapter_model.safetensors` 與 `adapter_config.json`）。pickle 格式的檔案 grader 一律不讀。

# %% nbgrader={"grade": false, "grade_id": "lora-config", "locked": false, "schema_version": 3, "solution": true, "task": false}
def make_lora_config() -> LoraConfig:
    ### BEGIN SOLUTION
    return LoraConfig(r=8, lora_alpha=16, lora_dropout=0.05, target_modules=["q_proj", "v_proj"],
                      bias="none", task_type="CAUSAL_LM")
    ### END SOLUTION


def count_trainable(model: nn.Module) -> tuple[int, int]:
    ### BEGIN SOLUTION
    trainable = sum(p.numel() for p in model.parameters() if p.requires_grad)
    total = sum(p.numel() for p in model.parameters())
    return trainable, total
    ### END SOLUTION


def save_adapter(model, folder: Path) -> None:
    """Save only the adapter (not the base) in safetensors format."""
    ### BEGIN SOLUTION
    model.save_pretrained(folder, safe_serialization=True)
    ### END SOLUTION


# %% [markdown] nbgrader={"grade": false, "grade_id": "train-md", "locked": true, "schema_version": 3, "solution": false, "task": false}
# ## 3. 訓練迴圈
#
# 寫 `train(model, batches, max_steps, lr)`：用 `torch.optim.AdamW` 只更新 `requires_grad` 的參數，
# 依序取 `batches`（用完就從頭再來），每步 forward → `loss.backward()` → `step()` → `zero_grad()`，
# 回傳每一步的 loss（Python float 的 list）。記得先 `model.train()`。

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
MAX_STEPS = 120 if PROFILE == "tiny" else 200
LR = 5e-3 if PROFILE == "tiny" else 2e-4
BATCH_SIZE = 8 if PROFILE == "tiny" else 4

# The held-out split (1 row in 8) is kept for the grader: it judges your adapter on rows it never saw.
rows = load_course_dataset("instructions", PROFILE, split="train")
dataset = InstructionDataset(rows, tokenizer, template="alpaca", max_length=128)
collator = InstructionDataCollator(tokenizer, pad_to_multiple_of=8)
loader = DataLoader(dataset, batch_size=BATCH_SIZE, shuffle=True, collate_fn=collator,
                    generator=torch.Generator().manual_seed(0))
DEVICE = default_device(PROFILE)  # the GPU under `full`, the CPU under `tiny`: where load_model puts the model
batches = [{k: v.to(DEVICE) for k, v in batch.items()} for _, batch in zip(range(MAX_STEPS), itertools.cycle(loader))]
print(f"{len(dataset):,} examples, {len(batches)} batches of {BATCH_SIZE} on {DEVICE}")

# %% nbgrader={"grade": false, "grade_id": "train-lora", "locked": true, "schema_version": 3, "solution": false, "task": false}
torch.manual_seed(0)
model = get_peft_model(load_model("llama", PROFILE, for_training=True), make_lora_config())
n_trainable, n_total = count_trainable(model)
print(f"LoRA: {n_trainable:,} trainable of {n_total:,} ({100 * n_trainable / n_total:.2f}%)")

meter = ThroughputMeter(warmup_steps=0)
tokens = sum(int(b["attention_mask"].sum()) for b in batches)
with meter:
    losses = train(model, batches, MAX_STEPS, LR)
meter.step(tokens=tokens, samples=len(batches) * BATCH_SIZE)
save_adapter(model, ARTIFACTS / "lora-adapter")
metrics = {"losses": losses, "n_trainable": n_trainable, "n_total": n_total, **meter.report(),
           "memory": memory_report()}
(ARTIFACTS / "train_metrics.json").write_text(json.dumps(metrics, indent=2))
print(f"loss {losses[0]:.3f} -> {losses[-1]:.3f}")


# %% nbgrader={"grade": true, "grade_id": "test-train-lora", "locked": true, "points": 9, "schema_version": 3, "solution": false, "task": false}
assert (ARTIFACTS / "lora-adapter" / "adapter_model.safetensors").is_file(), "adapter 應存成 safetensors"
assert sum(losses[-5:]) / 5 < sum(losses[:5]) / 5, "訓練後的 loss 應低於一開始"

# %% [markdown] nbgrader={"grade": false, "grade_id": "qlora-md", "locked": true, "schema_version": 3, "solution": false, "task": false}
# ## 4. QLoRA：在 4-bit nf4 base 上訓練
#
# `load_model(..., quantization="nf4")` 透過 bitsandbytes 把 base model 量化成 4-bit。
# `prepare_model_for_kbit_training` 會把 layer norm 轉回 fp32 並開啟輸入的 gradient。
# 用同一個 `make_lora_config()` 與你的 `train()` 訓練。
#
# ⚠️ **陷阱**：在某些 CPU 上，4-bit 權重在 eval + no-grad 的 forward 後會被重新排列，之後 LoRA
# 完全拿不到 gradient，loss 一動也不動、卻沒有任何錯誤。`common_utils.models.load_model` 已經加上保護；
# grader 會檢查 loss 真的下降、而且 `lora_B` 真的離開了 0。

# %% nbgrader={"grade": false, "grade_id": "train-qlora", "locked": true, "schema_version": 3, "solution": false, "task": false}
QLORA_STEPS = 30 if PROFILE == "tiny" else 200
torch.manual_seed(0)
# Gradient checkpointing saves GPU memory on 7B models; the tiny model does not need it.
base4 = prepare_model_for_kbit_training(load_model("llama", PROFILE, quantization="nf4", for_training=True),
                                       use_gradient_checkpointing=PROFILE == "full")
qlora = get_peft_model(base4, make_lora_config())
q_losses = train(qlora, batches, QLORA_STEPS, LR)
save_adapter(qlora, ARTIFACTS / "qlora-adapter")
(ARTIFACTS / "qlora_metrics.json").write_text(json.dumps({"losses": q_losses, "memory": memory_report()}, indent=2))
print(f"QLoRA loss {q_losses[0]:.3f} -> {q_losses[-1]:.3f}")

# %% nbgrader={"grade": true, "grade_id": "test-train-qlora", "locked": true, "points": 3, "schema_version": 3, "solution": false, "task": false}
assert (ARTIFACTS / "qlora-adapter" / "adapter_model.safetensors").is_file(), "QLoRA adapter 應存成 safetensors"

# %% [markdown] nbgrader={"grade": false, "grade_id": "grader-seam-md", "locked": true, "schema_version": 3, "solution": false, "task": false}
# ## Grader seam（不用改）
#
# 下面這個鎖定的 cell 收集 grader 會呼叫的函式：它們只是用 **你的** `LoRALinear`、`count_trainable`、
# `train` 在 grader 選的輸入上跑一次。你也可以自己呼叫它們來檢查。

# %% nbgrader={"grade": false, "grade_id": "grader-seam", "locked": true, "schema_version": 3, "solution": false, "task": false}
def lora_layer_output(weight, bias, lora_A, lora_B, x, alpha: float, r: int, dropout: float = 0.0,
                      train: bool = False, seed: int = 0):
    """Build a LoRALinear around the given weights and return its output (used by the grader)."""
    base = nn.Linear(weight.shape[1], weight.shape[0])
    with torch.no_grad():
        base.weight.copy_(weight)
        base.bias.copy_(bias)
    layer = LoRALinear(base, r=r, alpha=alpha, dropout=dropout)
    with torch.no_grad():
        layer.lora_A.copy_(lora_A)
        layer.lora_B.copy_(lora_B)
    layer.train(train)
    torch.manual_seed(seed)
    with torch.no_grad():
        return layer(x)


def fresh_lora_layer(d_in: int, d_out: int, r: int, seed: int = 0) -> dict:
    """A freshly initialised layer's LoRA matrices and its trainable-parameter count."""
    torch.manual_seed(seed)
    layer = LoRALinear(nn.Linear(d_in, d_out), r=r, alpha=2 * r, dropout=0.1)
    trainable = sum(p.numel() for p in layer.parameters() if p.requires_grad)
    return {"lora_A": layer.lora_A.detach().clone(), "lora_B": layer.lora_B.detach().clone(),
            "trainable": torch.tensor(trainable)}


def count_trainable_on(r: int, target_modules: list[str], unfreeze: list[str]) -> list[int]:
    """Your count_trainable on a model the grader describes: LoRA(r) on target_modules of a fresh
    base, plus the parameters whose names contain one of `unfreeze` made trainable."""
    probe = get_peft_model(load_model("llama", PROFILE), LoraConfig(r=r, lora_alpha=2 * r, target_modules=target_modules))
    for name, p in probe.named_parameters():
        if any(u in name for u in unfreeze):
            p.requires_grad_(True)
    return [int(n) for n in count_trainable(probe)]


def adapted_logits(input_ids: torch.Tensor) -> torch.Tensor:
    """Logits of the model you trained and saved (the grader compares them with the reloaded adapter)."""
    model.eval()
    with torch.no_grad():
        return model(input_ids=input_ids.to(model.device)).logits.float().cpu()


def measure_train_throughput(steps: int = 20) -> float:
    """Tokens/s of `steps` steps of your train() on a fresh LoRA model (the grader pairs it with the reference's)."""
    torch.manual_seed(0)
    device = "cuda" if torch.cuda.is_available() else "cpu"
    fresh = get_peft_model(load_model("llama", PROFILE, for_training=True), make_lora_config()).to(device)
    run = [{k: v.to(device) for k, v in b.items()} for b in batches[:steps]]
    meter = ThroughputMeter(warmup_steps=0)
    with meter:
        train(fresh, run, steps, LR)
    meter.step(tokens=sum(int(b["attention_mask"].sum()) for b in run), samples=steps * BATCH_SIZE)
    return float(meter.report()["tokens_per_s"])


def qlora_peak_memory_gib() -> float:
    return torch.cuda.max_memory_allocated() / 2**30 if torch.cuda.is_available() else 0.0
