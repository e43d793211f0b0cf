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
# # 02-3 推論（Inference）
#
# `artifacts/adapters/` 只有 adapter 與分類頭的張量，加上描述放法的 `adapter_config.json`。推論時：建一個 **新的**
# base，照設定插入同樣的 adapter，再把張量放回去。

# %% nbgrader={"grade": false, "grade_id": "setup", "locked": true, "schema_version": 3, "solution": false, "task": false}
import json
from pathlib import Path

import torch
from safetensors.torch import load_file
from torch import nn

from common_utils.adapters.bottleneck import BottleneckConfig, add_bottleneck_adapters
from common_utils.datasets import load_course_dataset
from common_utils.models import load_model, load_tokenizer
from common_utils.profiles import get_profile

PROFILE = get_profile()
ARTIFACTS = Path("artifacts")
tokenizer = load_tokenizer(PROFILE, family="bert")

# %% [markdown] nbgrader={"grade": false, "grade_id": "load-md", "locked": true, "schema_version": 3, "solution": false, "task": false}
# ## 1. 載回 adapter
#
# 實作 `load_adapters(folder)`：讀 `adapter_config.json`，用其中的 `placement`、`bottleneck_size`、`activation`
# 建 `BottleneckConfig`，`add_bottleneck_adapters(load_model("bert", PROFILE), config)`，再用
# `load_state_dict(tensors, strict=False)` 放入 `adapters.safetensors` 的張量（有對不上的鍵名就 `raise ValueError`），
# 切到 `eval()` 並回傳。
#
# 再實作 `classify_logits(model, pairs)`：`pairs` 是 `(sentence1, sentence2)` 的 list；把兩句一起 tokenize
# （`tokenizer(firsts, seconds, padding=True, truncation=True, max_length=64)`），把張量放到 `model.device`（`full` 時在 GPU 上），
# 傳入 `input_ids` 與 `attention_mask`，在 `torch.no_grad()` 下回傳 logits。

# %% nbgrader={"grade": false, "grade_id": "load", "locked": false, "schema_version": 3, "solution": true, "task": false}
def load_adapters(folder: Path) -> nn.Module:
    ### BEGIN SOLUTION
    settings = json.loads((folder / "adapter_config.json").read_text())
    config = BottleneckConfig(bottleneck_size=settings["bottleneck_size"], placement=settings["placement"],
                              activation=settings["activation"])
    model = add_bottleneck_adapters(load_model("bert", PROFILE), config)
    result = model.load_state_dict(load_file(folder / "adapters.safetensors"), strict=False)
    if result.unexpected_keys:
        raise ValueError(f"{folder} holds tensors the model does not have: {result.unexpected_keys[:3]}")
    return model.eval()
    ### END SOLUTION


def classify_logits(model: nn.Module, pairs: list[tuple[str, str]]) -> torch.Tensor:
    ### BEGIN SOLUTION
    enc = tokenizer([a for a, _ in pairs], [b for _, b in pairs], padding=True, truncation=True, max_length=64,
                    return_tensors="pt").to(model.device)
    with torch.no_grad():
        return model(input_ids=enc["input_ids"], attention_mask=enc["attention_mask"]).logits
    ### END SOLUTION


# %% nbgrader={"grade": false, "grade_id": "run", "locked": true, "schema_version": 3, "solution": false, "task": false}
model = load_adapters(ARTIFACTS / "adapters")
held = load_course_dataset("paraphrase", PROFILE, split="held_out")
logits = classify_logits(model, [(r["sentence1"], r["sentence2"]) for r in held]).cpu()
accuracy = float((logits.argmax(-1) == torch.tensor([r["label"] for r in held])).float().mean())
(ARTIFACTS / "inference.json").write_text(json.dumps({"held_out_accuracy": accuracy}, indent=2))
print(f"held-out accuracy {accuracy:.3f} on {len(held)} pairs")

# %% nbgrader={"grade": true, "grade_id": "test-inference", "locked": true, "points": 4, "schema_version": 3, "solution": false, "task": false}
assert tuple(logits.shape) == (len(held), model.config.num_labels), "logits 形狀應為 (len(pairs), num_labels)"
assert not model.training, "推論時模型要在 eval() 模式"

# %% [markdown] nbgrader={"grade": false, "grade_id": "grader-seam-md", "locked": true, "schema_version": 3, "solution": false, "task": false}
# ## Grader seam（不用改）

# %% nbgrader={"grade": false, "grade_id": "grader-seam", "locked": true, "schema_version": 3, "solution": false, "task": false}
def logits_on(pairs: list) -> torch.Tensor:
    return classify_logits(load_adapters(ARTIFACTS / "adapters"), [(a, b) for a, b in pairs]).cpu()
