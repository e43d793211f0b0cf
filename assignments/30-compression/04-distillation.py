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
# # 30-4 知識蒸餾（Knowledge distillation）
#
# Hinton et al., 2015, *Distilling the Knowledge in a Neural Network*（arXiv:1503.02531）：小的 **student**
# 除了學正確答案（hard label），也學大的 **teacher** 的「軟」機率分布。溫度 $T$ 讓分布變平，透露 teacher 認為
# 哪些錯誤答案「比較不錯」：
#
# $$ \mathcal{L} = \alpha \, T^2 \, \mathrm{KL}\big(\mathrm{softmax}(z_t / T) \,\|\, \mathrm{softmax}(z_s / T)\big)
#    + (1 - \alpha)\, \mathrm{CE}(z_s, y) $$
#
# KL 對 batch 取平均（PyTorch 的 `reduction="batchmean"`：總和除以 batch 大小，**不是** 除以元素個數）；
# $T^2$ 讓軟標籤的梯度大小不隨 $T$ 改變（梯度裡有 $1/T^2$）。
#
# 本 notebook：先在情感分類資料上微調 tiny BERT 當 teacher（鎖定的 cell），再把它蒸餾到一個更小的 student。

# %% nbgrader={"grade": false, "grade_id": "setup", "locked": true, "schema_version": 3, "solution": false, "task": false}
import itertools
import json
import time
from pathlib import Path

import torch
import torch.nn.functional as F
from transformers import AutoModelForSequenceClassification, BertConfig

from common_utils.compression import accuracy, encode, sentiment_split
from common_utils.models import load_model, tiny_config
from common_utils.profiles import get_profile

PROFILE = get_profile()
ARTIFACTS = Path("artifacts")
ARTIFACTS.mkdir(exist_ok=True)
train_rows, held_rows = sentiment_split(PROFILE)
torch.manual_seed(0)
if PROFILE == "tiny":
    torch.set_num_threads(1)  # tiny matrices: a second thread costs more in synchronisation than it gives

# %% [markdown] nbgrader={"grade": false, "grade_id": "loss-md", "locked": true, "schema_version": 3, "solution": false, "task": false}
# ## 1. 蒸餾損失
#
# 寫 `kd_loss(student_logits, teacher_logits, labels, T, alpha)`，照上面的公式（`F.log_softmax`、`F.kl_div` 的
# `reduction="batchmean"`、`F.cross_entropy`）。teacher 的 logits 不需要梯度。

# %% nbgrader={"grade": false, "grade_id": "kd-loss", "locked": false, "schema_version": 3, "solution": true, "task": false}
def kd_loss(student_logits: torch.Tensor, teacher_logits: torch.Tensor, labels: torch.Tensor, T: float = 2.0,
            alpha: float = 0.5) -> torch.Tensor:
    ### BEGIN SOLUTION
    soft = F.kl_div(F.log_softmax(student_logits / T, dim=-1), F.log_softmax(teacher_logits.detach() / T, dim=-1),
                    reduction="batchmean", log_target=True)
    hard = F.cross_entropy(student_logits, labels)
    return alpha * T ** 2 * soft + (1 - alpha) * hard
    ### END SOLUTION


# %% nbgrader={"grade": true, "grade_id": "test-kd-loss", "locked": true, "points": 6, "schema_version": 3, "solution": false, "task": false}
s, t, y = torch.randn(4, 3), torch.randn(4, 3), torch.tensor([0, 2, 1, 1])
assert torch.isclose(kd_loss(s, t, y, T=3.0, alpha=0.0), F.cross_entropy(s, y)), "alpha = 0 時只剩 hard-label 的 cross entropy"
assert torch.isclose(kd_loss(t, t, y, T=3.0, alpha=1.0), torch.tensor(0.0), atol=1e-6), "student = teacher 時 KL 為 0"
p_t = F.softmax(t / 3, -1)
want = 9 * (p_t * (p_t.log() - F.log_softmax(s / 3, -1))).sum() / 4
assert torch.isclose(kd_loss(s, t, y, T=3.0, alpha=1.0), want, rtol=1e-5), "alpha = 1：T² · KL(teacher ‖ student)，對 batch 取平均"

# %% [markdown] nbgrader={"grade": false, "grade_id": "teacher-md", "locked": true, "schema_version": 3, "solution": false, "task": false}
# ## 2. Teacher
#
# 鎖定的 cell：把 profile 的 BERT 分類模型在訓練資料上微調幾步，當作 teacher，存到 `artifacts/teacher/`。

# %% nbgrader={"grade": false, "grade_id": "teacher", "locked": true, "schema_version": 3, "solution": false, "task": false}
TEACHER_STEPS, BATCH_SIZE = (60 if PROFILE == "tiny" else 300), 16


def batches(rows: list[dict], seed: int = 0):
    order = torch.randperm(len(rows), generator=torch.Generator().manual_seed(seed)).tolist()
    chunks = [[rows[i] for i in order[s:s + BATCH_SIZE]] for s in range(0, len(order), BATCH_SIZE)]
    return itertools.cycle([encode(chunk, PROFILE) for chunk in chunks])


torch.manual_seed(0)
teacher = load_model("bert", PROFILE, for_training=True)
optimizer = torch.optim.AdamW(teacher.parameters(), lr=1e-3 if PROFILE == "tiny" else 3e-5)
for _, batch in zip(range(TEACHER_STEPS), batches(train_rows)):
    teacher(**batch).loss.backward()
    optimizer.step()
    optimizer.zero_grad()
teacher.eval().save_pretrained(ARTIFACTS / "teacher", safe_serialization=True)
print(f"teacher held-out accuracy {accuracy(teacher, held_rows, PROFILE):.3f}")

# %% [markdown] nbgrader={"grade": false, "grade_id": "distill-md", "locked": true, "schema_version": 3, "solution": false, "task": false}
# ## 3. 蒸餾一個更小的 student
#
# student 是只有 1 層、寬度一半的 BERT。寫 `distill(student, teacher, batches, steps, lr, T, alpha)`：
# AdamW 只更新 student；每一步 teacher 在 `torch.no_grad()` 下算 logits，student 用你的 `kd_loss`；回傳每步的 loss。
# grader 會自己載入 `artifacts/student/` 與 `artifacts/teacher/`，在保留資料上算準確率：student 至少要達到
# teacher 的 `assignment.toml` 裡 `kd_accuracy_fraction` 倍。整段在 CPU 上幾秒內完成。

# %% nbgrader={"grade": false, "grade_id": "distill", "locked": false, "schema_version": 3, "solution": true, "task": false}
def distill(student, teacher, batches, steps: int, lr: float, T: float = 2.0, alpha: float = 0.5) -> list[float]:
    ### BEGIN SOLUTION
    optimizer = torch.optim.AdamW(student.parameters(), lr=lr)
    student.train()
    teacher.eval()
    losses = []
    for _, batch in zip(range(steps), batches):
        inputs = {"input_ids": batch["input_ids"], "attention_mask": batch["attention_mask"]}
        with torch.no_grad():
            teacher_logits = teacher(**inputs).logits
        loss = kd_loss(student(**inputs).logits, teacher_logits, batch["labels"], T, alpha)
        loss.backward()
        optimizer.step()
        optimizer.zero_grad()
        losses.append(loss.item())
    return losses
    ### END SOLUTION


# %% nbgrader={"grade": false, "grade_id": "student", "locked": true, "schema_version": 3, "solution": false, "task": false}
STUDENT_STEPS = 80 if PROFILE == "tiny" else 600
base = tiny_config("bert") if PROFILE == "tiny" else teacher.config
config = BertConfig(**{**base.to_dict(), "num_hidden_layers": 1, "hidden_size": base.hidden_size // 2,
                       "intermediate_size": base.intermediate_size // 2, "num_attention_heads": 2})
torch.manual_seed(0)
student = AutoModelForSequenceClassification.from_config(config)
started = time.perf_counter()
kd_losses = distill(student, teacher, batches(train_rows, seed=1), STUDENT_STEPS, lr=2e-3 if PROFILE == "tiny" else 1e-4)
seconds = time.perf_counter() - started
student.eval().save_pretrained(ARTIFACTS / "student", safe_serialization=True)
sizes = {name: sum(p.numel() for p in m.parameters()) for name, m in (("teacher", teacher), ("student", student))}
summary = {"seconds": seconds, "losses": kd_losses, "parameters": sizes,
           "accuracy": {"teacher": accuracy(teacher, held_rows, PROFILE), "student": accuracy(student, held_rows, PROFILE)}}
(ARTIFACTS / "distill.json").write_text(json.dumps(summary, indent=2))
print(f"{seconds:.1f} s | parameters {sizes} | held-out accuracy {summary['accuracy']}")

# %% nbgrader={"grade": true, "grade_id": "test-distill", "locked": true, "points": 6, "schema_version": 3, "solution": false, "task": false}
assert (ARTIFACTS / "student" / "model.safetensors").is_file(), "student 應存成 safetensors"
assert sum(kd_losses[-10:]) < sum(kd_losses[:10]), "蒸餾的 loss 應下降"
