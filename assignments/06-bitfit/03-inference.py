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
# # 06-3 推論（Inference）
#
# 02 存下的 `artifacts/bitfit/` 只有 bias 向量與分類頭。推論時：建立一個 **新的** base model，
# 把這些張量放回對應的位置，再做分類。base 的其餘權重一個都沒變，所以不需要存它們。

# %% nbgrader={"grade": false, "grade_id": "setup", "locked": true, "schema_version": 3, "solution": false, "task": false}
import json
from pathlib import Path

import torch
from safetensors.torch import load_file
from torch import nn

from common_utils.datasets import load_course_dataset
from common_utils.models import load_model, load_tokenizer
from common_utils.profiles import get_profile

PROFILE = get_profile()
ARTIFACTS = Path("artifacts")
tokenizer = load_tokenizer(PROFILE, family="bert")

# %% [markdown] nbgrader={"grade": false, "grade_id": "load-md", "locked": true, "schema_version": 3, "solution": false, "task": false}
# ## 1. 載回 BitFit 參數
#
# 實作 `load_bitfit(folder)`：`load_model("bert", PROFILE)` 建一個新的 base，讀 `folder/bitfit.safetensors`，
# 把每個張量複製進同名的參數（`model.load_state_dict(tensors, strict=False)`，並確認沒有對不上的鍵名：
# 有的話 `raise ValueError`），最後切到 `eval()`（關掉 dropout）並回傳模型。
#
# 再實作 `classify_logits(model, texts)`：tokenize（padding、truncation 到 64 個 token，放到 `model.device`），把 `input_ids` **與
# `attention_mask`** 一起送進模型（沒有 mask 的話 padding token 也會被 attention 看到，短句的結果就變了），
# 在 `torch.no_grad()` 下回傳 logits，形狀 `(len(texts), num_labels)`。

# %% nbgrader={"grade": false, "grade_id": "load", "locked": false, "schema_version": 3, "solution": true, "task": false}
def load_bitfit(folder: Path) -> nn.Module:
    ### BEGIN SOLUTION
    model = load_model("bert", PROFILE)
    tensors = load_file(folder / "bitfit.safetensors")
    result = model.load_state_dict(tensors, strict=False)
    if result.unexpected_keys:
        raise ValueError(f"{folder} holds tensors the base does not have: {result.unexpected_keys[:3]}")
    return model.eval()
    ### END SOLUTION


def classify_logits(model: nn.Module, texts: list[str]) -> torch.Tensor:
    ### BEGIN SOLUTION
    enc = tokenizer(texts, padding=True, truncation=True, max_length=64, return_tensors="pt").to(model.device)
    with torch.no_grad():
        return model(input_ids=enc["input_ids"], attention_mask=enc["attention_mask"]).logits
    ### END SOLUTION


# %% nbgrader={"grade": false, "grade_id": "run", "locked": true, "schema_version": 3, "solution": false, "task": false}
model = load_bitfit(ARTIFACTS / "bitfit")
examples = ["This movie is wonderful.", "這本書令人失望。", "This trip is horrible.", "這堂課非常喜歡。"]
for text, label in zip(examples, classify_logits(model, examples).argmax(-1).tolist()):
    print(f"{label} ({'positive' if label else 'negative'}) | {text}")

held = load_course_dataset("sentiment", PROFILE, split="held_out")
predicted = classify_logits(model, [r["text"] for r in held]).argmax(-1).cpu()
accuracy = float((predicted == torch.tensor([r["label"] for r in held])).float().mean())
(ARTIFACTS / "inference.json").write_text(json.dumps({"held_out_accuracy": accuracy}, indent=2))
print(f"held-out accuracy {accuracy:.3f} on {len(held)} rows")

# %% nbgrader={"grade": true, "grade_id": "test-inference", "locked": true, "points": 4, "schema_version": 3, "solution": false, "task": false}
logits = classify_logits(model, examples)
assert tuple(logits.shape) == (len(examples), model.config.num_labels), "logits 形狀應為 (len(texts), num_labels)"
assert not model.training, "推論時模型要在 eval() 模式"

# %% [markdown] nbgrader={"grade": false, "grade_id": "grader-seam-md", "locked": true, "schema_version": 3, "solution": false, "task": false}
# ## Grader seam（不用改）
#
# grader 用下面的函式，在 **它選的** 句子上跑你的 `load_bitfit` 與 `classify_logits`，再和它自己載入的結果比對。

# %% nbgrader={"grade": false, "grade_id": "grader-seam", "locked": true, "schema_version": 3, "solution": false, "task": false}
def logits_on(texts: list[str]) -> torch.Tensor:
    return classify_logits(load_bitfit(ARTIFACTS / "bitfit"), texts).cpu()
