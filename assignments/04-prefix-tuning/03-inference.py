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
# # 04-3 推論（Inference）
#
# 存下來的 adapter 只有 prefix $P$（每個 virtual token 在每一層的 key 與 value），沒有 MLP。推論時把它載回
# **一個新的** base model：peft 在 `generate` 的第一步把 $P$ 放進 KV cache，之後每個新 token 都 attend 到它，
# 所以 prefix 在整段生成裡一直都在（論文 §4.1：prefix 就像一段 virtual tokens，之後的每個 token 都 attend 到它們）。
# 本 notebook：(1) 寫 `load_adapted(adapter_dir)`；(2) 寫一個批次（left padding）的 greedy decoding `greedy_generate`；
# (3) 比較 base 與加上 prefix 後的輸出。

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
tokenizer = load_tokenizer(PROFILE, "gpt2")
PROMPTS = [
    "### Instruction:\n把單字翻成英文\n\n### Input:\n貓\n\n### Response:\n",
    "### Instruction:\nWhat is the capital of France?\n\n### Response:\n",
    "### Instruction:\nReverse the word\n\n### Input:\nlora\n\n### Response:\n",
]

# %% [markdown] nbgrader={"grade": false, "grade_id": "load-md", "locked": true, "schema_version": 3, "solution": false, "task": false}
# ## 1. 載入 prefix
#
# `load_adapted(adapter_dir)`：用 `load_model("gpt2", PROFILE)` 建一個 **新的** base model，
# 再用 `PeftModel.from_pretrained` 套上 `adapter_dir` 裡的 prefix，切到 `eval()` 後回傳。

# %% nbgrader={"grade": false, "grade_id": "load-adapted", "locked": false, "schema_version": 3, "solution": true, "task": false}
def load_adapted(adapter_dir) -> PeftModel:
    ### BEGIN SOLUTION
    return PeftModel.from_pretrained(load_model("gpt2", PROFILE), str(adapter_dir)).eval()
    ### END SOLUTION


# %% [markdown] nbgrader={"grade": false, "grade_id": "generate-md", "locked": true, "schema_version": 3, "solution": false, "task": false}
# ## 2. 一個批次的 greedy decoding（left padding）
#
# `greedy_generate(model, tokenizer, prompts, max_new_tokens)`：把所有 prompt 放進 **一個** 批次，用
# **`model.generate`**（PeftModel 的，不是 base model 的：只有它會放進 prefix）做 greedy decoding
# （`do_sample=False`，傳入放到 `model.device` 的 `input_ids` 與 `attention_mask`），回傳每個 prompt 新產生的文字
# （`skip_special_tokens=True`）。
#
# 長短不同的 prompt 要 padding。decoder-only 模型要 **left padding**（`tokenizer.padding_side = "left"`）：
# 新 token 接在每一列最後一個真實 token 之後；right padding 的短 prompt 會接在 pad 後面生成。
# 和 02 的 `prefix_forward` 一樣，left padding 不能改變結果：`generate` 從 attention mask 算 position ids，
# peft 再把 prefix 的 $n$ 個 1 接在 mask 前面，所以每一列的輸出都要和它單獨生成時相同（grader 會比對）。
# prefix 在 cache 裡，不在 `input_ids` 裡：只 decode `input_ids` 長度之後的 token。

# %% nbgrader={"grade": false, "grade_id": "greedy-generate", "locked": false, "schema_version": 3, "solution": true, "task": false}
def greedy_generate(model, tokenizer, prompts: list[str], max_new_tokens: int = 16) -> list[str]:
    ### BEGIN SOLUTION
    tokenizer.padding_side = "left"  # every row's new tokens follow its own last real token
    inputs = tokenizer(prompts, return_tensors="pt", padding=True).to(model.device)
    with torch.no_grad():
        out = model.generate(**inputs, max_new_tokens=max_new_tokens, do_sample=False,
                             pad_token_id=tokenizer.pad_token_id)
    return tokenizer.batch_decode(out[:, inputs["input_ids"].shape[1]:], skip_special_tokens=True)
    ### END SOLUTION


# %% nbgrader={"grade": false, "grade_id": "compare", "locked": true, "schema_version": 3, "solution": false, "task": false}
base = load_model("gpt2", PROFILE).eval()
adapted = load_adapted(ARTIFACTS / "prefix-adapter")
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
    """Your loading and decoding, on any adapter (yours, or one the grader made)."""
    return greedy_generate(load_adapted(adapter_dir), tokenizer, prompts, max_new_tokens)


# %% nbgrader={"grade": true, "grade_id": "test-generate", "locked": true, "points": 4, "schema_version": 3, "solution": false, "task": false}
assert len(generations["adapted"]) == len(PROMPTS), "每個 prompt 都要有一個輸出"
assert all(isinstance(t, str) for t in generations["adapted"]), "輸出應為字串"
assert not any(t.startswith("### Instruction") for t in generations["adapted"]), "只 decode 新產生的 token，不含 prompt"
