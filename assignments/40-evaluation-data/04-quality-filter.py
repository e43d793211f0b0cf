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
# # 40-4 品質過濾：Gopher / C4 風格的啟發式規則
#
# 預訓練語料在去重之後，還會用簡單、可解釋的規則丟掉低品質文件。DeepMind 的 Gopher
# （Rae et al., 2021, *Scaling Language Models*, 附錄 A）與 Google 的 C4（Raffel et al., 2020）用的規則包括：
# 文件長度、`#` 與省略號相對於字數的比例、重複的行、以及是否含有常見的停用詞（真正的句子幾乎一定有 "the"、"的"）。
#
# 本 notebook 的規則與門檻（門檻本身是「可以接受」的邊界值，剛好等於門檻時 **保留**）：
#
# | 規則 | 移除條件 |
# | --- | --- |
# | `too_short` | 字數 < `MIN_WORDS` |
# | `too_long` | 字數 > `MAX_WORDS` |
# | `symbols` | (`#` 的個數 + `...` 的個數 + `…` 的個數) / 字數 > `MAX_SYMBOL_RATIO` |
# | `repetition` | 重複的行（和前面某一行相同的非空行）占所有非空行的比例 > `MAX_DUP_LINE_FRACTION` |
# | `no_stop_words` | 停用詞出現次數 < `MIN_STOP_WORDS` |
#
# 「字」：英文是 `[A-Za-z0-9']+` 的連續片段，中文 **每個漢字算一個字**（中文沒有空白分詞），見 `WORD_RE`。

# %% nbgrader={"grade": false, "grade_id": "setup", "locked": true, "schema_version": 3, "solution": false, "task": false}
import json
import re
from pathlib import Path

from common_utils.datasets import load_eval_dataset

ARTIFACTS = Path("artifacts")
ARTIFACTS.mkdir(exist_ok=True)
CORPUS = [row["text"] for row in load_eval_dataset("web_corpus")]
WORD_RE = re.compile(r"[A-Za-z0-9']+|[\u4e00-\u9fff]")
MIN_WORDS = 20
MAX_WORDS = 2000
MAX_SYMBOL_RATIO = 0.1
MAX_DUP_LINE_FRACTION = 0.3
MIN_STOP_WORDS = 2
STOP_WORDS = frozenset({"the", "be", "to", "of", "and", "that", "have", "with", "is", "was",
                        "的", "是", "在", "了", "和", "有", "我", "不"})
RULES = ("too_short", "too_long", "symbols", "repetition", "no_stop_words")
print(f"{len(CORPUS)} documents")

# %% [markdown] nbgrader={"grade": false, "grade_id": "signals-md", "locked": true, "schema_version": 3, "solution": false, "task": false}
# ## 1. 品質訊號
#
# 實作 `quality_signals(text)`，回傳：
# - `n_words`：`WORD_RE` 找到的字數；
# - `symbol_ratio`：(`#` 數 + `...` 數 + `…` 數) / `n_words`（沒有字時用 1 當分母）；
# - `dup_line_fraction`：把每行 `strip()` 後丟掉空行，和前面某一行相同的行數 / 非空行數（沒有行時為 0）；
# - `stop_words`：字（英文轉小寫）在 `STOP_WORDS` 裡的 **次數**。

# %% nbgrader={"grade": false, "grade_id": "signals", "locked": false, "schema_version": 3, "solution": true, "task": false}
def quality_signals(text: str) -> dict:
    ### BEGIN SOLUTION
    words = WORD_RE.findall(text)
    symbols = text.count("#") + text.count("...") + text.count("…")
    lines = [line.strip() for line in text.splitlines() if line.strip()]
    duplicates = len(lines) - len(set(lines))
    return {"n_words": len(words), "symbol_ratio": symbols / max(len(words), 1),
            "dup_line_fraction": duplicates / len(lines) if lines else 0.0,
            "stop_words": sum(w.lower() in STOP_WORDS for w in words)}
    ### END SOLUTION


# %% nbgrader={"grade": true, "grade_id": "test-signals", "locked": true, "points": 5, "schema_version": 3, "solution": false, "task": false}
_q = quality_signals("今天天氣很好。\nThe cat's toy #1 ...\n今天天氣很好。")
assert _q["n_words"] == 6 + 4 + 6, _q
assert abs(_q["symbol_ratio"] - 2 / 16) < 1e-12 and abs(_q["dup_line_fraction"] - 1 / 3) < 1e-12, _q
assert _q["stop_words"] == 1, _q

# %% [markdown] nbgrader={"grade": false, "grade_id": "rules-md", "locked": true, "schema_version": 3, "solution": false, "task": false}
# ## 2. 規則
#
# `removal_reasons(text)`：依 `RULES` 的順序回傳這份文件違反的規則名稱（全部列出，保留的文件是空 list）。
# `filter_corpus(texts)`：回傳 `{"kept": 保留數, "removed": 移除數, "by_rule": {規則: 違反這條的文件數}}`
# （`by_rule` 包含 `RULES` 的每個名稱；一份文件可能同時違反好幾條）。

# %% nbgrader={"grade": false, "grade_id": "rules", "locked": false, "schema_version": 3, "solution": true, "task": false}
def removal_reasons(text: str) -> list[str]:
    ### BEGIN SOLUTION
    q = quality_signals(text)
    broken = {"too_short": q["n_words"] < MIN_WORDS, "too_long": q["n_words"] > MAX_WORDS,
              "symbols": q["symbol_ratio"] > MAX_SYMBOL_RATIO,
              "repetition": q["dup_line_fraction"] > MAX_DUP_LINE_FRACTION,
              "no_stop_words": q["stop_words"] < MIN_STOP_WORDS}
    return [rule for rule in RULES if broken[rule]]
    ### END SOLUTION


def filter_corpus(texts: list[str]) -> dict:
    ### BEGIN SOLUTION
    by_rule = dict.fromkeys(RULES, 0)
    kept = 0
    for text in texts:
        reasons = removal_reasons(text)
        kept += not reasons
        for rule in reasons:
            by_rule[rule] += 1
    return {"kept": kept, "removed": len(texts) - kept, "by_rule": by_rule}
    ### END SOLUTION


# %% nbgrader={"grade": true, "grade_id": "test-rules", "locked": true, "points": 6, "schema_version": 3, "solution": false, "task": false}
assert removal_reasons("the " * MIN_WORDS) == [], "剛好 MIN_WORDS 個字要保留"
assert removal_reasons("the " * (MIN_WORDS - 1)) == ["too_short"]
assert removal_reasons("貓" * 30) == ["no_stop_words"], removal_reasons("貓" * 30)

# %% [markdown] nbgrader={"grade": false, "grade_id": "corpus-md", "locked": true, "schema_version": 3, "solution": false, "task": false}
# ## 3. 在語料上過濾
#
# 下面的 cell 對整個語料套用規則，結果存到 `artifacts/filter.json`。

# %% nbgrader={"grade": false, "grade_id": "filter-corpus", "locked": true, "schema_version": 3, "solution": false, "task": false}
FILTER_COUNTS = filter_corpus(CORPUS)
REMOVED = [i for i, text in enumerate(CORPUS) if removal_reasons(text)]
(ARTIFACTS / "filter.json").write_text(json.dumps({"counts": FILTER_COUNTS, "removed": REMOVED}, indent=2))
print(FILTER_COUNTS)

# %% nbgrader={"grade": true, "grade_id": "test-filter-corpus", "locked": true, "points": 4, "schema_version": 3, "solution": false, "task": false}
assert FILTER_COUNTS["kept"] + FILTER_COUNTS["removed"] == len(CORPUS)
assert all(FILTER_COUNTS["by_rule"][rule] > 0 for rule in ("too_short", "symbols", "repetition", "no_stop_words"))
