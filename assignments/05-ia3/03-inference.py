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
# # 05-3 推論（Inference）
#
# `artifacts/ia3-adapter/` 只有 IA3 的向量（幾百個數字）。推論時載入一個新的 base，再用 peft 把向量放回去。

# %% nbgrader={"grade": false, "grade_id": "setup", "locked": true, "schema_version": 3, "solution": false, "task": false}
import warnings
from pathlib import Path

import torch
from peft import PeftModel

from common_utils.models import load_model, load_tokenizer
from common_utils.profiles import get_profile

warnings.filterwarnings("ignore", category=FutureWarning)
PROFILE = get_profile()
ARTIFACTS = Path("artifacts")
tokenizer = load_tokenizer(PROFILE)

# %% [markdown] nbgrader={"grade": false, "grade_id": "load-md", "locked": true, "schema_version": 3, "solution": false, "task": false}
# ## 1. 載回 adapter 並生成
#
# 實作 `load_ia3(folder)`：`PeftModel.from_pretrained(load_model("llama", PROFILE), folder)`，切到 `eval()` 並回傳。
# 再實作 `greedy_answer(model, prompt, max_new_tokens)`：greedy decoding（輸入放到 `model.device`），回傳 **只有新生成的部分**
# （不含 prompt）的文字。

# %% nbgrader={"grade": false, "grade_id": "load", "locked": false, "schema_version": 3, "solution": true, "task": false}
def load_ia3(folder: Path):
    ### BEGIN SOLUTION
    return PeftModel.from_pretrained(load_model("llama", PROFILE), str(folder)).eval()
    ### END SOLUTION


def greedy_answer(model, prompt: str, max_new_tokens: int = 24) -> str:
    ### BEGIN SOLUTION
    ids = tokenizer(prompt, return_tensors="pt").to(model.device)
    with torch.no_grad():
        out = model.generate(**ids, max_new_tokens=max_new_tokens, do_sample=False, pad_token_id=tokenizer.pad_token_id)
    return tokenizer.decode(out[0, ids["input_ids"].shape[1]:], skip_special_tokens=True)
    ### END SOLUTION


# %% nbgrader={"grade": false, "grade_id": "run", "locked": true, "schema_version": 3, "solution": false, "task": false}
model = load_ia3(ARTIFACTS / "ia3-adapter")
prompt = "### Instruction:\n把單字翻成英文\n\n### Input:\n狗\n\n### Response:\n"
answer = greedy_answer(model, prompt)
print(repr(answer))

# %% nbgrader={"grade": true, "grade_id": "test-inference", "locked": true, "points": 3, "schema_version": 3, "solution": false, "task": false}
assert isinstance(answer, str) and not answer.startswith("### Instruction"), "只回傳新生成的文字"
assert not model.training, "推論時模型要在 eval() 模式"

# %% [markdown] nbgrader={"grade": false, "grade_id": "grader-seam-md", "locked": true, "schema_version": 3, "solution": false, "task": false}
# ## Grader seam（不用改）
#
# grader 自己做一個 IA3 adapter（向量不是 1），放進你的資料夾，再用 **你的** `load_ia3` 載入比對 logits。

# %% nbgrader={"grade": false, "grade_id": "grader-seam", "locked": true, "schema_version": 3, "solution": false, "task": false}
def logits_on(folder: str, input_ids) -> torch.Tensor:
    """Your load_ia3 on an adapter folder the grader made: the logits of ``input_ids``."""
    model = load_ia3(Path(folder))
    with torch.no_grad():
        return model(input_ids=input_ids.to(model.device)).logits.cpu()
