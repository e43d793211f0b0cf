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
# # 01-1 環境與資料準備（Setup）
#
# 這個作業分四個 notebook，請依序執行，它們共用同一個資料夾裡的 `artifacts/`：
# 1. **01-setup**（本 notebook）：確認 profile、載入 tokenizer 與指令資料集，寫出 prompt 格式與 label masking。
# 2. **02-train**：從零寫一個 LoRA 線性層，再用 peft 在 4-bit nf4（QLoRA）與全精度 base model 上訓練。
# 3. **03-inference**：把存下來的 adapter 載回新的 base model，用 greedy decoding 生成文字。
# 4. **04-merge-and-deploy**：把 LoRA 合併回全精度權重，存成不需要 peft 就能載入的模型。
#
# 預設 `COURSE_PROFILE=tiny`：模型由設定檔與固定種子建立，CPU 上幾分鐘內跑完。

# %% nbgrader={"grade": false, "grade_id": "setup", "locked": true, "schema_version": 3, "solution": false, "task": false}
import json
from pathlib import Path

import torch

from common_utils.datasets import load_course_dataset
from common_utils.models import load_tokenizer
from common_utils.profiles import get_profile

PROFILE = get_profile()
ARTIFACTS = Path("artifacts")
ARTIFACTS.mkdir(exist_ok=True)
tokenizer = load_tokenizer(PROFILE)
rows = load_course_dataset("instructions", PROFILE)
print(f"profile={PROFILE} | vocab={len(tokenizer):,} | {len(rows):,} instruction rows")
print(rows[0])

# %% [markdown] nbgrader={"grade": false, "grade_id": "prompt-md", "locked": true, "schema_version": 3, "solution": false, "task": false}
# ## 1. Prompt 格式（Alpaca template）
#
# 指令微調（instruction tuning）把每筆資料 `{instruction, input, output}` 排成固定的文字格式。
# 請實作 `format_prompt(example)`，回傳 **不含答案** 的 prompt：
#
# ```
# ### Instruction:
# {instruction}
#
# ### Input:
# {input}
#
# ### Response:
# ```
#
# - `input` 是空字串、或只有空白（例如 `"  "`）時，整段 `### Input:`（連同它後面的空行）都不要出現。
# - 最後以 `### Response:\n` 結尾，模型要從這裡開始接著寫答案。
# - 請直接使用下面的 `PROMPT_WITH_INPUT`、`PROMPT_NO_INPUT`。

# %% nbgrader={"grade": false, "grade_id": "templates", "locked": true, "schema_version": 3, "solution": false, "task": false}
PROMPT_WITH_INPUT = "### Instruction:\n{instruction}\n\n### Input:\n{input}\n\n### Response:\n"
PROMPT_NO_INPUT = "### Instruction:\n{instruction}\n\n### Response:\n"

# %% nbgrader={"grade": false, "grade_id": "format-prompt", "locked": false, "schema_version": 3, "solution": true, "task": false}
def format_prompt(example: dict) -> str:
    """The Alpaca prompt for one example, ending right where the response starts."""
    ### BEGIN SOLUTION
    if example.get("input", "").strip():
        return PROMPT_WITH_INPUT.format(instruction=example["instruction"], input=example["input"])
    return PROMPT_NO_INPUT.format(instruction=example["instruction"])
    ### END SOLUTION


# %% nbgrader={"grade": true, "grade_id": "test-format-prompt", "locked": true, "points": 3, "schema_version": 3, "solution": false, "task": false}
p = format_prompt({"instruction": "把單字翻成英文", "input": "貓", "output": "cat"})
assert p.endswith("### Response:\n"), "prompt 應以 '### Response:\\n' 結尾"
assert "### Input:\n貓" in p, "有 input 時要包含 '### Input:' 段落"
assert "### Input" not in format_prompt({"instruction": "說哈囉", "input": "", "output": "hello"}), \
    "input 為空字串時不要有 '### Input:' 段落"

# %% [markdown] nbgrader={"grade": false, "grade_id": "labels-md", "locked": true, "schema_version": 3, "solution": false, "task": false}
# ## 2. Label masking
#
# Causal LM 的訓練目標是「預測下一個 token」。我們只想讓模型學 **回答**，不學 prompt，
# 所以 prompt 部分的 label 設成 `-100`（PyTorch `CrossEntropyLoss` 的 `ignore_index`）。
#
# 實作 `build_example(prompt_ids, response_ids, eos_id, max_length)`，回傳 dict：
# - `input_ids` = prompt_ids + response_ids + [eos_id]
# - `labels`    = [-100] × len(prompt_ids) + response_ids + [eos_id]
# - `attention_mask` = 全部為 1，長度與 `input_ids` 相同
# - 三者都截斷到前 `max_length` 個 token。

# %% nbgrader={"grade": false, "grade_id": "build-example", "locked": false, "schema_version": 3, "solution": true, "task": false}
IGNORE_INDEX = -100


def build_example(prompt_ids: list[int], response_ids: list[int], eos_id: int, max_length: int) -> dict:
    ### BEGIN SOLUTION
    input_ids = list(prompt_ids) + list(response_ids) + [eos_id]
    labels = [IGNORE_INDEX] * len(prompt_ids) + list(response_ids) + [eos_id]
    input_ids, labels = input_ids[:max_length], labels[:max_length]
    return {"input_ids": input_ids, "labels": labels, "attention_mask": [1] * len(input_ids)}
    ### END SOLUTION


# %% nbgrader={"grade": true, "grade_id": "test-build-example", "locked": true, "points": 3, "schema_version": 3, "solution": false, "task": false}
ex = build_example([5, 6, 7], [8, 9], eos_id=2, max_length=16)
assert ex["input_ids"] == [5, 6, 7, 8, 9, 2], f"input_ids 錯誤：{ex['input_ids']}"
assert ex["labels"][:3] == [-100, -100, -100], "prompt 部分的 label 應為 -100"
assert len(build_example([1] * 10, [3] * 10, 2, max_length=8)["labels"]) == 8, "請截斷到 max_length"

# %% [markdown] nbgrader={"grade": false, "grade_id": "tokenize-md", "locked": true, "schema_version": 3, "solution": false, "task": false}
# ## 3. 套用到資料集
#
# 下面的 cell 用你的兩個函式處理整個資料集，並把統計存到 `artifacts/setup_summary.json`。

# %% nbgrader={"grade": false, "grade_id": "tokenize", "locked": true, "schema_version": 3, "solution": false, "task": false}
MAX_LENGTH = 128
examples = []
for row in rows:
    prompt_ids = tokenizer(format_prompt(row), add_special_tokens=False)["input_ids"]
    response_ids = tokenizer(row["output"], add_special_tokens=False)["input_ids"]
    examples.append(build_example(prompt_ids, response_ids, tokenizer.eos_token_id, MAX_LENGTH))
masked = sum(label == IGNORE_INDEX for ex in examples for label in ex["labels"])
total = sum(len(ex["labels"]) for ex in examples)
summary = {"examples": len(examples), "tokens": total, "masked_fraction": masked / total}
(ARTIFACTS / "setup_summary.json").write_text(json.dumps(summary, indent=2))
print(summary)
print(tokenizer.decode(examples[0]["input_ids"]))
