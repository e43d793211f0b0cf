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
# # 20-2 Speculative decoding（greedy）
#
# 大模型一次前向傳播可以 **同時** 驗證很多個 token。speculative decoding（Leviathan et al., 2023,
# *Fast Inference from Transformers via Speculative Decoding*, arXiv:2211.17192；Chen et al., 2023,
# arXiv:2302.01318）讓一個便宜的 draft model 先猜 `k` 個 token，再用 target model 一次前向傳播檢查：
# 從頭開始，和 target 的 greedy 選擇相同的 token 都接受；第一個不同的位置改用 target 的 token，本輪結束。
# 如果 `k` 個都被接受，target 那次前向傳播還多給一個「bonus」token。
#
# greedy 版本的輸出必須 **和 target 自己 greedy decoding 一模一樣**，只是比較快。
# 這裡全部用 float64，讓捨入誤差不會掩蓋錯誤。

# %% nbgrader={"grade": false, "grade_id": "setup", "locked": true, "schema_version": 3, "solution": false, "task": false}
import copy
import warnings

import torch

from common_utils.models import load_model, load_tokenizer
from common_utils.profiles import get_profile

warnings.filterwarnings("ignore", category=FutureWarning)
torch.set_num_threads(1)
PROFILE = get_profile()
tokenizer = load_tokenizer(PROFILE)
TARGET_MODEL = load_model("llama", PROFILE).eval().double()


@torch.no_grad()
def target(ids: torch.Tensor) -> torch.Tensor:
    """Logits (1, seq, vocab) of the target model for a (1, seq) sequence."""
    return TARGET_MODEL(input_ids=ids).logits


# %% [markdown] nbgrader={"grade": false, "grade_id": "greedy-md", "locked": true, "schema_version": 3, "solution": false, "task": false}
# ## 1. 基準：target 的 greedy decoding
#
# `greedy(model, input_ids, max_new_tokens)`：`model` 是像上面 `target` 一樣的函式（序列進、logits 出）。
# 每一步取最後一個位置 logits 的 argmax 接上去，回傳新產生的 token 列表（不處理 eos，固定產生 `max_new_tokens` 個）。

# %% nbgrader={"grade": false, "grade_id": "greedy", "locked": false, "schema_version": 3, "solution": true, "task": false}
def greedy(model, input_ids: torch.Tensor, max_new_tokens: int) -> list[int]:
    ### BEGIN SOLUTION
    ids = input_ids
    for _ in range(max_new_tokens):
        ids = torch.cat([ids, model(ids)[:, -1].argmax(-1, keepdim=True)], dim=1)
    return ids[0, input_ids.shape[1]:].tolist()
    ### END SOLUTION


# %% [markdown] nbgrader={"grade": false, "grade_id": "spec-md", "locked": true, "schema_version": 3, "solution": false, "task": false}
# ## 2. `speculative_generate(target, draft, input_ids, max_new_tokens, k)`
#
# 每一輪：
# 1. draft 用 greedy 猜 `m = min(k, 剩下要產生的數量)` 個 token；
# 2. target 對「目前序列＋這 `m` 個猜測」做 **一次** 前向傳播，得到每個位置的 greedy 選擇；
# 3. 從第一個猜測開始，和 target 的選擇相同就接受，遇到第一個不同就停；
# 4. 接上被接受的 token，再接上 target 在下一個位置的選擇（修正，或全部接受時的 bonus token）。
#
# 產生滿 `max_new_tokens` 個就結束（多出來的截掉）。回傳 `(tokens, stats)`，`stats = {"proposed": 猜了幾個,
# "accepted": 接受了幾個}`，接受率 = `accepted / proposed`。grader 會用自己算的次數核對。

# %% nbgrader={"grade": false, "grade_id": "speculative", "locked": false, "schema_version": 3, "solution": true, "task": false}
def speculative_generate(target, draft, input_ids: torch.Tensor, max_new_tokens: int, k: int):
    ids = input_ids
    stats = {"proposed": 0, "accepted": 0}
    ### BEGIN SOLUTION
    start = input_ids.shape[1]
    while ids.shape[1] - start < max_new_tokens:
        m = min(k, max_new_tokens - (ids.shape[1] - start))
        guess = torch.tensor([greedy(draft, ids, m)], dtype=ids.dtype)
        choices = target(torch.cat([ids, guess], dim=1))[0, ids.shape[1] - 1:].argmax(-1)  # m + 1 choices
        accepted = 0
        while accepted < m and guess[0, accepted] == choices[accepted]:
            accepted += 1
        stats["proposed"] += m
        stats["accepted"] += accepted
        ids = torch.cat([ids, guess[:, :accepted], choices[accepted].view(1, 1)], dim=1)
    ### END SOLUTION
    return ids[0, start:start + max_new_tokens].tolist(), stats


# %% [markdown] nbgrader={"grade": false, "grade_id": "draft-md", "locked": true, "schema_version": 3, "solution": false, "task": false}
# ## 3. 一個真正的 draft model
#
# 最簡單的 draft：target 只留第一層（共用 embedding 與輸出層）。它便宜但常常猜錯；
# 看看不同 `k` 的接受率。之後 grader 也會用「前幾個和 target 一致、然後故意猜錯」的特製 draft 來測你的程式。

# %% nbgrader={"grade": false, "grade_id": "demo", "locked": true, "schema_version": 3, "solution": false, "task": false}
DRAFT_MODEL = copy.deepcopy(TARGET_MODEL)
DRAFT_MODEL.model.layers = DRAFT_MODEL.model.layers[:1]
DRAFT_MODEL.config.num_hidden_layers = 1


@torch.no_grad()
def shallow_draft(ids: torch.Tensor) -> torch.Tensor:
    return DRAFT_MODEL(input_ids=ids).logits


PROMPT_IDS = torch.tensor([tokenizer("### Instruction:\nSay hello\n\n### Response:\n").input_ids])
reference_tokens = greedy(target, PROMPT_IDS, 16)
for k in (1, 2, 4):
    tokens, stats = speculative_generate(target, shallow_draft, PROMPT_IDS, 16, k)
    print(f"k={k}: same as greedy={tokens == reference_tokens} | acceptance {stats['accepted']}/{stats['proposed']}")

# %% nbgrader={"grade": false, "grade_id": "grader-seam", "locked": true, "schema_version": 3, "solution": false, "task": false}
# What the grader calls. A scripted draft proposes the target's own greedy token, except at the
# positions (counted from the first new token) the grader lists, where it proposes the runner-up.
def scripted_draft(prompt_len: int, wrong_positions: list[int]):
    wrong = set(wrong_positions)

    def draft(ids: torch.Tensor) -> torch.Tensor:
        logits = target(ids).clone()
        for column in range(ids.shape[1]):
            if column + 1 - prompt_len in wrong:  # this column predicts new token number column+1-prompt_len
                top2 = logits[0, column].topk(2).indices
                logits[0, column, top2] = logits[0, column, top2.flip(0)]  # swap the best two
        return logits

    return draft


def run_greedy(prompt: list[int], max_new_tokens: int) -> list[int]:
    return greedy(target, torch.tensor([prompt]), max_new_tokens)


def run_speculative(prompt: list[int], max_new_tokens: int, k: int, wrong_positions: list[int]) -> dict:
    tokens, stats = speculative_generate(target, scripted_draft(len(prompt), wrong_positions),
                                         torch.tensor([prompt]), max_new_tokens, k)
    return {"tokens": [int(t) for t in tokens], "proposed": int(stats["proposed"]), "accepted": int(stats["accepted"])}


# %% nbgrader={"grade": true, "grade_id": "test-speculative", "locked": true, "points": 10, "schema_version": 3, "solution": false, "task": false}
_prompt = PROMPT_IDS[0].tolist()
_want = run_greedy(_prompt, 10)
_all = run_speculative(_prompt, 10, 3, [])
assert _all["tokens"] == _want, "draft 全猜對時，輸出應等於 target 的 greedy decoding"
assert _all["accepted"] == _all["proposed"], "draft 全猜對時每個猜測都應被接受"
_none = run_speculative(_prompt, 10, 3, list(range(10)))
assert _none["tokens"] == _want and _none["accepted"] == 0, "draft 全猜錯時輸出仍等於 greedy，且接受數為 0"
