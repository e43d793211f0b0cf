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
# # 05-4 Merge：把縮放向量乘回權重（Merge and deploy）
#
# IA3 的縮放是線性的，可以乘回凍結的權重 $W$（形狀 `(out, in)`）：
# - keys / values 縮放輸出：$l \odot (Wx) = (\mathrm{diag}(l) W) x$，也就是 $W$ 的 **每一列** 乘上 $l_i$；
# - feed-forward 縮放輸入：$W(l \odot x) = (W \mathrm{diag}(l)) x$，也就是 $W$ 的 **每一行** 乘上 $l_j$。
#
# 合併後推論沒有額外成本（Liu et al., 2022, §3.3），存成不需要 peft 就能載入的模型。

# %% nbgrader={"grade": false, "grade_id": "setup", "locked": true, "schema_version": 3, "solution": false, "task": false}
import warnings
from pathlib import Path

import torch
from peft import PeftModel
from peft.tuners.ia3 import IA3Layer

from common_utils.models import load_model
from common_utils.profiles import get_profile

warnings.filterwarnings("ignore", category=FutureWarning)
PROFILE = get_profile()
ARTIFACTS = Path("artifacts")

# %% [markdown] nbgrader={"grade": false, "grade_id": "merge-md", "locked": true, "schema_version": 3, "solution": false, "task": false}
# ## 1. 合併一個權重
#
# 實作 `merge_ia3_weight(weight, ia3_l, feedforward)`，回傳新的權重（不要改動傳入的 tensor）。
# `ia3_l` 是一維向量：`feedforward=False` 時長度是 `out`，`True` 時長度是 `in`。

# %% nbgrader={"grade": false, "grade_id": "merge-weight", "locked": false, "schema_version": 3, "solution": true, "task": false}
def merge_ia3_weight(weight: torch.Tensor, ia3_l: torch.Tensor, feedforward: bool) -> torch.Tensor:
    ### BEGIN SOLUTION
    if feedforward:
        return weight * ia3_l.reshape(1, -1)
    return weight * ia3_l.reshape(-1, 1)
    ### END SOLUTION


# %% nbgrader={"grade": false, "grade_id": "merge-run", "locked": true, "schema_version": 3, "solution": false, "task": false}
peft_model = PeftModel.from_pretrained(load_model("llama", PROFILE), str(ARTIFACTS / "ia3-adapter")).eval()
ids = torch.tensor([[1, 20, 30, 40, 50, 60]], device=peft_model.device)
with torch.no_grad():
    unmerged = peft_model(input_ids=ids).logits
    for module in peft_model.modules():
        if isinstance(module, IA3Layer):  # peft keeps l with shape (out, 1) or (1, in): flatten it
            l_vec = module.ia3_l["default"].reshape(-1)
            module.base_layer.weight.copy_(merge_ia3_weight(module.base_layer.weight, l_vec, module.is_feedforward))
merged = peft_model.unload()  # the adapter modules removed, the base layers (now merged) kept
merged.save_pretrained(ARTIFACTS / "merged", safe_serialization=True)
with torch.no_grad():
    gap = ((merged(input_ids=ids).logits - unmerged).abs().max() / unmerged.abs().max()).item()
print(f"merged vs unmerged: relative gap {gap:.2e}")

# %% nbgrader={"grade": true, "grade_id": "test-merge", "locked": true, "points": 7, "schema_version": 3, "solution": false, "task": false}
assert gap < 1e-5, f"合併後的輸出應與合併前相同（相對差 {gap:.2e}）"
assert not any("ia3" in n for n, _ in merged.named_parameters()), "合併後不應留下 IA3 參數"

# %% [markdown] nbgrader={"grade": false, "grade_id": "grader-seam-md", "locked": true, "schema_version": 3, "solution": false, "task": false}
# ## Grader seam（不用改）

# %% nbgrader={"grade": false, "grade_id": "grader-seam", "locked": true, "schema_version": 3, "solution": false, "task": false}
def merge_on(weight, ia3_l, feedforward: bool) -> torch.Tensor:
    before = weight.clone()
    out = merge_ia3_weight(weight, ia3_l, feedforward)
    if not torch.equal(weight, before):
        raise ValueError("merge_ia3_weight changed the tensor it was given")
    return out
