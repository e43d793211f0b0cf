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
# # 40-2 用 log-likelihood 評分選擇題，ROUGE-L，評估報告
#
# 像 HellaSwag、ARC、MMLU 這類選擇題 benchmark，不讓模型「生成」答案，而是比較每個選項的
# **對數似然總和** $\sum_t \log p(\text{選項}_t \mid \text{題目}, \text{選項}_{<t})$，取最大的當作模型的答案。
# EleutherAI 的 **lm-evaluation-harness**（`lm-eval`）就是這樣算 `acc` 與 `acc_norm` 的；
# 本 notebook 要你手寫同樣的計算，grader 會在同一個模型上實際跑 lm-eval，比較兩者。

# %% nbgrader={"grade": false, "grade_id": "setup", "locked": true, "schema_version": 3, "solution": false, "task": false}
import json
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt
import torch

from common_utils.datasets import load_eval_dataset
from common_utils.models import load_model, load_tokenizer
from common_utils.profiles import get_profile

PROFILE = get_profile()
ARTIFACTS = Path("artifacts")
ARTIFACTS.mkdir(exist_ok=True)
tokenizer = load_tokenizer(PROFILE)
model = load_model("llama", PROFILE).eval()
TASK = load_eval_dataset("mc_task")
# The prompt of the lm-eval task definition (common_utils/data/eval/lm_eval_task/course_mc.yaml).
TEMPLATE = "Question: {question}\nAnswer:"
DELIMITER = " "
print(f"{len(TASK)} questions; first: {TASK[0]}")

# %% [markdown] nbgrader={"grade": false, "grade_id": "encode-md", "locked": true, "schema_version": 3, "solution": false, "task": false}
# ## 1. 一個選項的對數似然
#
# lm-eval 對 `(context, continuation)` 的切法（causal LM）：
# 1. context 結尾的空白移到 continuation 開頭（`"Answer: "` + `"馬"` → `"Answer:"` + `" 馬"`），
#    因為 BPE 會把空白和後面的字併成一個 token；
# 2. 把 **整段** `context + continuation` 編碼，再編碼 context；continuation 的 token 是整段編碼裡
#    context token 之後的部分（不是把 continuation 單獨編碼）；
# 3. 用 tokenizer 的預設 special tokens 編碼（`tokenizer(text)["input_ids"]`），和 lm-eval 相同。
#
# 實作 `encode_pair(context, continuation)` 與 `loglikelihood(context, continuation)`（float，自然對數）。

# %% nbgrader={"grade": false, "grade_id": "loglikelihood", "locked": false, "schema_version": 3, "solution": true, "task": false}
def encode_pair(context: str, continuation: str) -> tuple[list[int], list[int]]:
    """(context ids, continuation ids) split the way lm-evaluation-harness splits them."""
    ### BEGIN SOLUTION
    n_spaces = len(context) - len(context.rstrip())
    if n_spaces:
        context, continuation = context[:-n_spaces], context[-n_spaces:] + continuation
    whole = tokenizer(context + continuation)["input_ids"]
    context_ids = tokenizer(context)["input_ids"]
    return context_ids, whole[len(context_ids):]
    ### END SOLUTION


@torch.no_grad()
def loglikelihood(context: str, continuation: str) -> float:
    """Summed log p of the continuation's tokens given the context."""
    ### BEGIN SOLUTION
    context_ids, continuation_ids = encode_pair(context, continuation)
    ids = torch.tensor([context_ids + continuation_ids])
    logp = torch.log_softmax(model(ids[:, :-1]).logits.double(), dim=-1)
    n = len(continuation_ids)
    target = ids[:, -n:]
    return float(logp[:, -n:].gather(-1, target.unsqueeze(-1)).sum())
    ### END SOLUTION


# %% nbgrader={"grade": true, "grade_id": "test-loglikelihood", "locked": true, "points": 6, "schema_version": 3, "solution": false, "task": false}
_c, _x = encode_pair("Question: 2 + 3?\nAnswer: ", "5")
assert tokenizer.decode(_x).startswith(" "), "context 結尾的空白要移到 continuation"
assert _c + _x == tokenizer("Question: 2 + 3?\nAnswer: 5")["input_ids"], "兩段加起來應等於整段的編碼"
assert loglikelihood("Question: 2 + 3?\nAnswer:", " 5") < 0

# %% [markdown] nbgrader={"grade": false, "grade_id": "score-md", "locked": true, "schema_version": 3, "solution": false, "task": false}
# ## 2. acc、acc_norm、acc_bytes
#
# 給一題所有選項的對數似然 `lls`、選項文字 `choices`（不含前面的分隔空白）與正確答案 `gold`：
# - `acc`：`argmax(lls) == gold`；
# - `acc_norm`：`argmax(lls / 選項的字元數)`（長選項的總和天生比較小，用長度正規化）；
# - `acc_bytes`：`argmax(lls / 選項的 UTF-8 位元組數)`。中文一個字是 3 個位元組，兩種正規化可能選出不同答案。
#
# 平手時取 **第一個**（和 `numpy.argmax` 一樣）。回傳 `{"acc": 0.0 或 1.0, "acc_norm": ..., "acc_bytes": ...}`。
# 注意：正規化用的是 **字元或位元組** 數，不是 token 數。

# %% nbgrader={"grade": false, "grade_id": "score-item", "locked": false, "schema_version": 3, "solution": true, "task": false}
def first_argmax(values: list[float]) -> int:
    ### BEGIN SOLUTION
    best = 0
    for i, v in enumerate(values):
        if v > values[best]:
            best = i
    return best
    ### END SOLUTION


def score_item(lls: list[float], choices: list[str], gold: int) -> dict:
    ### BEGIN SOLUTION
    chars = [ll / len(c) for ll, c in zip(lls, choices)]
    nbytes = [ll / len(c.encode("utf-8")) for ll, c in zip(lls, choices)]
    return {"acc": float(first_argmax(lls) == gold), "acc_norm": float(first_argmax(chars) == gold),
            "acc_bytes": float(first_argmax(nbytes) == gold)}
    ### END SOLUTION


# %% nbgrader={"grade": true, "grade_id": "test-score-item", "locked": true, "points": 5, "schema_version": 3, "solution": false, "task": false}
assert score_item([-2.0, -2.0, -5.0], ["a", "b", "c"], 0)["acc"] == 1.0, "平手時取第一個"
_s = score_item([-3.0, -6.0], ["貓", "cat"], 0)
assert (_s["acc"], _s["acc_norm"], _s["acc_bytes"]) == (1.0, 0.0, 1.0), _s

# %% [markdown] nbgrader={"grade": false, "grade_id": "task-md", "locked": true, "schema_version": 3, "solution": false, "task": false}
# ## 3. 整個任務
#
# 每題的 context 是 `TEMPLATE.format(question=...)`，每個選項的 continuation 是 `DELIMITER + 選項`。
# 實作 `evaluate_task(rows)`：回傳 `{"acc", "acc_norm", "acc_bytes"}`（平均）以及
# `"per_doc"`：每題一個 dict `{"lls": [...], "acc", "acc_norm", "acc_bytes"}`，順序與 `rows` 相同。

# %% nbgrader={"grade": false, "grade_id": "evaluate-task", "locked": false, "schema_version": 3, "solution": true, "task": false}
def evaluate_task(rows: list[dict]) -> dict:
    ### BEGIN SOLUTION
    per_doc = []
    for row in rows:
        context = TEMPLATE.format(question=row["question"])
        lls = [loglikelihood(context, DELIMITER + choice) for choice in row["choices"]]
        per_doc.append({"lls": lls, **score_item(lls, row["choices"], row["gold"])})
    means = {m: sum(d[m] for d in per_doc) / len(per_doc) for m in ("acc", "acc_norm", "acc_bytes")}
    return {**means, "per_doc": per_doc}
    ### END SOLUTION


# %% nbgrader={"grade": true, "grade_id": "test-evaluate-task", "locked": true, "points": 6, "schema_version": 3, "solution": false, "task": false}
SCORES = evaluate_task(TASK)
assert len(SCORES["per_doc"]) == len(TASK)
assert 0.0 <= SCORES["acc"] <= 1.0 and 0.0 <= SCORES["acc_norm"] <= 1.0
print({k: SCORES[k] for k in ("acc", "acc_norm", "acc_bytes")})

# %% [markdown] nbgrader={"grade": false, "grade_id": "rouge-md", "locked": true, "schema_version": 3, "solution": false, "task": false}
# ## 4. 生成任務的指標：ROUGE-L
#
# 摘要這類生成任務沒有唯一答案，常用 ROUGE-L（Lin, 2004）：以 **最長共同子序列**（LCS）衡量重疊。
# - 斷詞（與 Google 的 `rouge-score` 相同）：轉小寫，把所有不是 `a-z0-9` 的字元換成空白，依空白切開，丟掉空字串；
# - precision = LCS / 系統輸出的 token 數，recall = LCS / 參考答案的 token 數，
#   F = 2PR / (P + R)（P + R = 0 時為 0；任一方沒有 token 時三者皆為 0）。
#
# 實作 `rouge_tokens`、`lcs_length`（動態規劃）與 `rouge_l(candidate, reference)`，回傳
# `{"precision", "recall", "fmeasure"}`。

# %% nbgrader={"grade": false, "grade_id": "rouge", "locked": false, "schema_version": 3, "solution": true, "task": false}
import re


def rouge_tokens(text: str) -> list[str]:
    ### BEGIN SOLUTION
    return [t for t in re.sub(r"[^a-z0-9]+", " ", text.lower()).split() if t]
    ### END SOLUTION


def lcs_length(a: list, b: list) -> int:
    ### BEGIN SOLUTION
    prev = [0] * (len(b) + 1)
    for x in a:
        cur = [0]
        for j, y in enumerate(b):
            cur.append(prev[j] + 1 if x == y else max(prev[j + 1], cur[j]))
        prev = cur
    return prev[-1]
    ### END SOLUTION


def rouge_l(candidate: str, reference: str) -> dict:
    ### BEGIN SOLUTION
    cand, ref = rouge_tokens(candidate), rouge_tokens(reference)
    if not cand or not ref:
        return {"precision": 0.0, "recall": 0.0, "fmeasure": 0.0}
    lcs = lcs_length(cand, ref)
    p, r = lcs / len(cand), lcs / len(ref)
    return {"precision": p, "recall": r, "fmeasure": 2 * p * r / (p + r) if p + r > 0 else 0.0}
    ### END SOLUTION


# %% nbgrader={"grade": true, "grade_id": "test-rouge", "locked": true, "points": 4, "schema_version": 3, "solution": false, "task": false}
assert lcs_length(list("ABCBDAB"), list("BDCABA")) == 4
assert rouge_tokens("Taipei: SUNNY, 31°C") == ["taipei", "sunny", "31", "c"]
_r = rouge_l("Taipei is sunny", "Taipei: sunny, 31 degrees.")
assert abs(_r["precision"] - 2 / 3) < 1e-12 and abs(_r["recall"] - 2 / 4) < 1e-12, _r

# %% [markdown] nbgrader={"grade": false, "grade_id": "report-md", "locked": true, "schema_version": 3, "solution": false, "task": false}
# ## 5. 評估報告
#
# 實作 `report_table(rows, per_doc)`：依語言分組（`"en"`、`"zh"`，最後一列 `"all"`），每列
# `{"subset", "n", "acc", "acc_norm", "acc_bytes"}`。`plot_report(table, path)` 畫出每組三個指標的長條圖，
# 存成 PNG。下面的 cell 會把表格、ROUGE-L 平均與圖存到 `artifacts/`，grader 會重新計算每個數字。

# %% nbgrader={"grade": false, "grade_id": "report", "locked": false, "schema_version": 3, "solution": true, "task": false}
METRICS = ("acc", "acc_norm", "acc_bytes")


def report_table(rows: list[dict], per_doc: list[dict]) -> list[dict]:
    ### BEGIN SOLUTION
    table = []
    for subset in ("en", "zh", "all"):
        docs = [d for row, d in zip(rows, per_doc) if subset in ("all", row["lang"])]
        table.append({"subset": subset, "n": len(docs), **{m: sum(d[m] for d in docs) / len(docs) for m in METRICS}})
    return table
    ### END SOLUTION


def plot_report(table: list[dict], path: Path) -> None:
    ### BEGIN SOLUTION
    fig, ax = plt.subplots(figsize=(6, 3.5))
    width = 0.25
    for k, metric in enumerate(METRICS):
        ax.bar([i + k * width for i in range(len(table))], [row[metric] for row in table], width, label=metric)
    ax.set_xticks([i + width for i in range(len(table))], [row["subset"] for row in table])
    ax.set_ylabel("accuracy")
    ax.set_ylim(0, 1)
    ax.legend()
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)
    ### END SOLUTION


# %% nbgrader={"grade": false, "grade_id": "write-report", "locked": true, "schema_version": 3, "solution": false, "task": false}
PAIRS = load_eval_dataset("summary_pairs")
TABLE = report_table(TASK, SCORES["per_doc"])
ROUGE_L = sum(rouge_l(p["candidate"], p["reference"])["fmeasure"] for p in PAIRS) / len(PAIRS)
(ARTIFACTS / "report.json").write_text(json.dumps({"table": TABLE, "rouge_l": ROUGE_L}, indent=2))
plot_report(TABLE, ARTIFACTS / "report.png")
print("| subset | n | acc | acc_norm | acc_bytes |\n| --- | --- | --- | --- | --- |")
for row in TABLE:
    print(f"| {row['subset']} | {row['n']} | " + " | ".join(f"{row[m]:.3f}" for m in METRICS) + " |")
print(f"ROUGE-L F (mean over {len(PAIRS)} summaries): {ROUGE_L:.4f}")

# %% nbgrader={"grade": true, "grade_id": "test-report", "locked": true, "points": 4, "schema_version": 3, "solution": false, "task": false}
assert [row["subset"] for row in TABLE] == ["en", "zh", "all"]
assert TABLE[-1]["n"] == len(TASK)
assert (ARTIFACTS / "report.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n", "report.png 應是 PNG"
