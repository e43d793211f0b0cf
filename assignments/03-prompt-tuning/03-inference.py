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
# # 03-3 推論（Inference）
#
# 存下來的 soft prompt 只有 $n \times d_{model}$ 個數字（tiny 模型上是幾 KB）。推論時把它載回
# **一個新的** base model：peft 會在每次 `generate` 時把 soft prompt 接在 prompt 的 embedding 前面，
# 並延長 attention mask。本 notebook：(1) 寫 `load_adapted(adapter_dir)`；(2) 寫 greedy decoding
# 的 `greedy_generate`；(3) 比較 base 與加上 soft prompt 後的輸出。

# %% nbgrader={"grade": false, "grade_id": "setup", "locked": true, "schema_version": 3, "solution": false, "task": false}
import json
import warnings
from pathlib import Path

import torch
from peft import PeftModel

from common_utils.models import load_model, load_tokenizer
from common_utils.profiles import get_profile

warnings.filterwarnings("ignore", category=FutureWarning)  # transformers 5 renames; not the lesson here
PROFILE = get_profile()
ARTIFACTS = Path("artifacts")
tokenizer = load_tokenizer(PROFILE)
PROMPTS = [
    "### Instruction:\n把單字翻成英文\n\n### Input:\n貓\n\n### Response:\n",
    "### Instruction:\nWhat is the capital of France?\n\n### Response:\n",
    "### Instruction:\nReverse the word\n\n### Input:\nlora\n\n### Response:\n",
]

# %% [markdown] nbgrader={"grade": false, "grade_id": "load-md", "locked": true, "schema_version": 3, "solution": false, "task": false}
# ## 1. 載入 soft prompt
#
# `load_adapted(adapter_dir)`：用 `load_model("llama", PROFILE)` 建一個 **新的** base model，
# 再用 `PeftModel.from_pretrained` 套上 `adapter_dir` 裡的 soft prompt，切到 `eval()` 後回傳。

# %% nbgrader={"grade": false, "grade_id": "load-adapted", "locked": false, "schema_version": 3, "solution": true, "task": false}
def load_adapted(adapter_dir) -> PeftModel:
    ### BEGIN SOLUTION
    return PeftModel.from_pretrained(load_model("llama", PROFILE), str(adapter_dir)).eval()
    ### END SOLUTION


# %% [markdown] nbgrader={"grade": false, "grade_id": "generate-md", "locked": true, "schema_version": 3, "solution": false, "task": false}
# ## 2. Greedy decoding
#
# `greedy_generate(model, tokenizer, prompts, max_new_tokens)`：每個 prompt 用 `model.generate`
# 做 greedy decoding（`do_sample=False`，傳入放到 `model.device` 的 `input_ids` 與 `attention_mask`），**只** decode 新產生的
# token，`skip_special_tokens=True`，回傳字串 list。注意：peft 的 prompt tuning 在 `generate` 的輸出裡
# **不包含** virtual token，輸出的開頭就是你的 prompt。

# %% nbgrader={"grade": false, "grade_id": "greedy-generate", "locked": false, "schema_version": 3, "solution": true, "task": false}
def greedy_generate(model, tokenizer, prompts: list[str], max_new_tokens: int = 16) -> list[str]:
    ### BEGIN SOLUTION
    texts = []
    for prompt in prompts:
        inputs = tokenizer(prompt, return_tensors="pt").to(model.device)
        with torch.no_grad():
            out = model.generate(**inputs, max_new_tokens=max_new_tokens, do_sample=False,
                                 pad_token_id=tokenizer.pad_token_id)
        texts.append(tokenizer.decode(out[0, inputs["input_ids"].shape[1]:], skip_special_tokens=True))
    return texts
    ### END SOLUTION


# %% nbgrader={"grade": false, "grade_id": "compare", "locked": true, "schema_version": 3, "solution": false, "task": false}
base = load_model("llama", PROFILE).eval()
adapted = load_adapted(ARTIFACTS / "prompt-adapter")
generations = {"prompts": PROMPTS, "base": greedy_generate(base, tokenizer, PROMPTS),
               "adapted": greedy_generate(adapted, tokenizer, PROMPTS)}
(ARTIFACTS / "generations.json").write_text(json.dumps(generations, ensure_ascii=False, indent=2))
for prompt, before, after in zip(PROMPTS, generations["base"], generations["adapted"]):
    print(prompt.splitlines()[1], "| base:", repr(before), "| adapted:", repr(after))

# %% [markdown] nbgrader={"grade": false, "grade_id": "grader-seam-md", "locked": true, "schema_version": 3, "solution": false, "task": false}
# ## Grader seam（不用改）
#
# grader 會呼叫下面的函式：用你的 `load_adapted` 與 `greedy_generate`，在它選的 adapter 與 prompt 上生成。

# %% nbgrader={"grade": false, "grade_id": "grader-seam", "locked": true, "schema_version": 3, "solution": false, "task": false}
def generate_texts(adapter_dir: str, prompts: list[str], max_new_tokens: int = 16) -> list[str]:
    """Your loading and decoding, on any adapter (the grader passes one it made itself)."""
    return greedy_generate(load_adapted(adapter_dir), tokenizer, prompts, max_new_tokens)


# %% nbgrader={"grade": true, "grade_id": "test-generate", "locked": true, "points": 4, "schema_version": 3, "solution": false, "task": false}
assert len(generations["adapted"]) == len(PROMPTS), "每個 prompt 都要有一個輸出"
assert all(isinstance(t, str) for t in generations["adapted"]), "輸出應為字串"
assert not any(t.startswith("### Instruction") for t in generations["adapted"]), "只 decode 新產生的 token，不含 prompt"
