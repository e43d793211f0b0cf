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
# # 01-4 合併與部署（Merge and deploy）
#
# 推論時每層多算一次 $BAx$ 會增加延遲。因為 $W' = W + \frac{\alpha}{r} B A$ 與原本的 $W$ 形狀相同，
# 可以把 LoRA **合併** 回權重，得到一個普通的模型：不需要 peft、沒有額外延遲。
#
# 兩個常見錯誤（原始課程教材就犯過）：
# 1. **合併進 4-bit 模型**：量化後的權重無法精確加上 $BA$，合併結果是錯的。一定要合併進 **全精度** base。
# 2. **合併到不同的 base**：adapter 只對訓練時那個 base 有意義。

# %% nbgrader={"grade": false, "grade_id": "setup", "locked": true, "schema_version": 3, "solution": false, "task": false}
import warnings
from pathlib import Path

import torch
from peft import PeftModel
from peft.tuners.lora import Linear as LoraLinearLayer
from transformers import AutoModelForCausalLM

from common_utils.models import load_model, load_tokenizer
from common_utils.profiles import get_profile

warnings.filterwarnings("ignore", category=FutureWarning)  # transformers 5 renames; not the lesson here
PROFILE = get_profile()
ARTIFACTS = Path("artifacts")
tokenizer = load_tokenizer(PROFILE)

# %% [markdown] nbgrader={"grade": false, "grade_id": "merge-weight-md", "locked": true, "schema_version": 3, "solution": false, "task": false}
# ## 1. 合併一層
#
# `merge_lora_weight(weight, lora_A, lora_B, alpha, r)` 回傳 $W + \frac{\alpha}{r} B A$。

# %% nbgrader={"grade": false, "grade_id": "merge-weight", "locked": false, "schema_version": 3, "solution": true, "task": false}
def merge_lora_weight(weight: torch.Tensor, lora_A: torch.Tensor, lora_B: torch.Tensor,
                      alpha: float, r: int) -> torch.Tensor:
    ### BEGIN SOLUTION
    return weight + (alpha / r) * (lora_B @ lora_A)
    ### END SOLUTION


# %% nbgrader={"grade": true, "grade_id": "test-merge-weight", "locked": true, "points": 3, "schema_version": 3, "solution": false, "task": false}
W, A, B = torch.randn(6, 4), torch.randn(2, 4), torch.randn(6, 2)
assert merge_lora_weight(W, A, B, alpha=4, r=2).shape == W.shape, "合併後形狀應與 W 相同"
assert torch.allclose(merge_lora_weight(W, A, torch.zeros(6, 2), alpha=4, r=2), W), "B = 0 時應得到原本的 W"

# %% [markdown] nbgrader={"grade": false, "grade_id": "merge-model-md", "locked": true, "schema_version": 3, "solution": false, "task": false}
# ## 2. 合併整個模型
#
# 1. `load_merge_base()`：回傳要合併進去的 base model。想想它應該是哪一個、用什麼精度。
# 2. `merge_lora_model(peft_model)`：對每個 `peft.tuners.lora.Linear`（下面匯入為 `LoraLinearLayer`），
#    用你的 `merge_lora_weight` 把 `lora_A`、`lora_B` 合併進 `base_layer.weight`
#    （alpha、r 取自 `peft_model.peft_config["default"]`），再把這個模組換成它的 `base_layer`。
#    最後回傳 `peft_model.get_base_model()`：一個不含任何 LoRA 模組的普通模型。
#    **不要**呼叫 peft 的 `merge_and_unload`，這一題要你自己寫。

# %% nbgrader={"grade": false, "grade_id": "merge-model", "locked": false, "schema_version": 3, "solution": true, "task": false}
def load_merge_base():
    ### BEGIN SOLUTION
    return load_model("llama", PROFILE)  # full precision, and the very base the adapter was trained on
    ### END SOLUTION


def merge_lora_model(peft_model: PeftModel) -> torch.nn.Module:
    ### BEGIN SOLUTION
    config = peft_model.peft_config["default"]
    lora_layers = [(name, m) for name, m in peft_model.named_modules() if isinstance(m, LoraLinearLayer)]
    for name, module in lora_layers:
        base = module.base_layer
        with torch.no_grad():
            base.weight.copy_(merge_lora_weight(base.weight, module.lora_A["default"].weight,
                                                module.lora_B["default"].weight, config.lora_alpha, config.r))
        parent_name, _, child = name.rpartition(".")
        setattr(peft_model.get_submodule(parent_name), child, base)
    return peft_model.get_base_model()
    ### END SOLUTION


# %% nbgrader={"grade": false, "grade_id": "merge-run", "locked": true, "schema_version": 3, "solution": false, "task": false}
peft_model = PeftModel.from_pretrained(load_merge_base(), str(ARTIFACTS / "lora-adapter")).eval()
probe = torch.tensor([tokenizer("### Instruction:\nWhat is the capital of France?")["input_ids"]], device=peft_model.device)
with torch.no_grad():
    before = peft_model(input_ids=probe).logits
merged = merge_lora_model(peft_model).eval()
with torch.no_grad():
    after = merged(input_ids=probe).logits
print("max |merged - unmerged| =", (after - before).abs().max().item())
merged.save_pretrained(ARTIFACTS / "merged", safe_serialization=True)
tokenizer.save_pretrained(ARTIFACTS / "merged")
print(sorted(p.name for p in (ARTIFACTS / "merged").iterdir()))

# %% [markdown] nbgrader={"grade": false, "grade_id": "grader-seam-md", "locked": true, "schema_version": 3, "solution": false, "task": false}
# ## Grader seam（不用改）
#
# grader 會呼叫下面的函式：它確認 `merge_lora_model` 真的用了你的 `merge_lora_weight`，每個 LoRA 層一次。

# %% nbgrader={"grade": false, "grade_id": "grader-seam", "locked": true, "schema_version": 3, "solution": false, "task": false}
def merge_weight_calls(adapter_dir: str) -> list[int]:
    """[calls to your merge_lora_weight, LoRA layers] while your merge_lora_model merges the adapter."""
    mine, calls = merge_lora_weight, []

    def counted(*args, **kwargs):
        calls.append(1)
        return mine(*args, **kwargs)

    peft_model = PeftModel.from_pretrained(load_model("llama", PROFILE), str(adapter_dir)).eval()
    layers = sum(isinstance(m, LoraLinearLayer) for m in peft_model.modules())
    globals()["merge_lora_weight"] = counted
    try:
        merge_lora_model(peft_model)
    finally:
        globals()["merge_lora_weight"] = mine
    return [len(calls), layers]


# %% nbgrader={"grade": true, "grade_id": "test-merge-model", "locked": true, "points": 9, "schema_version": 3, "solution": false, "task": false}
reloaded = AutoModelForCausalLM.from_pretrained(ARTIFACTS / "merged")
assert not any("lora" in name for name, _ in reloaded.named_parameters()), "合併後不應留下 LoRA 參數"
assert list((ARTIFACTS / "merged").glob("*.safetensors")), "請用 safetensors 存檔"
