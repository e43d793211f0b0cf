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
# # 20-1 KV cache 與批次生成（KV cache and batched generation）
#
# 自回歸生成每一步只多一個 token，但沒有快取時每一步都要把 **整段序列** 重新算一次。
# KV cache 把每一層 attention 已經算過的 key / value 存起來，新的一步只算新 token 的 q、k、v。
#
# 本 notebook 從零寫 tiny Llama 的前向傳播（只借用模型的權重與 RoPE），加上：
# 1. `KVCache`：每層一組 key / value，形狀 `(batch, kv_heads, seq, head_dim)`；
# 2. `forward`：支援快取與 attention mask（左、右 padding 都要對）；
# 3. `generate`：批次 greedy decoding，每列遇到 eos 就停。
#
# 評分時 grader 會在 **自己的 process** 用不加快取的完整前向傳播重算每一步的 logits 來比對。

# %% nbgrader={"grade": false, "grade_id": "setup", "locked": true, "schema_version": 3, "solution": false, "task": false}
import math
import time
import warnings

import torch
from transformers.models.llama.modeling_llama import apply_rotary_pos_emb

from common_utils.models import load_model, load_tokenizer
from common_utils.profiles import get_profile

warnings.filterwarnings("ignore", category=FutureWarning)
torch.set_num_threads(1)  # decoding a tiny model is latency-bound: threads only add contention
PROFILE = get_profile()
tokenizer = load_tokenizer(PROFILE)
MODEL = load_model("llama", PROFILE).eval()
print(MODEL.config.num_hidden_layers, "layers |", MODEL.config.num_key_value_heads, "kv heads |",
      MODEL.config.hidden_size // MODEL.config.num_attention_heads, "head_dim")

# %% [markdown] nbgrader={"grade": false, "grade_id": "cache-md", "locked": true, "schema_version": 3, "solution": false, "task": false}
# ## 1. `KVCache`
#
# `update(layer, k, v)` 把這一步的 `k`、`v`（形狀 `(batch, kv_heads, new, head_dim)`）接在該層已存的
# key / value 後面（沿著序列維度 `dim=2`），回傳 **到目前為止全部** 的 key 與 value。
# `seq_len()` 回傳目前存了幾個位置（第 0 層的長度；還沒存任何東西時是 0）。

# %% nbgrader={"grade": false, "grade_id": "kv-cache", "locked": false, "schema_version": 3, "solution": true, "task": false}
class KVCache:
    """Keys and values of every position seen so far, one pair per layer."""

    def __init__(self, n_layers: int):
        self.keys: list[torch.Tensor | None] = [None] * n_layers
        self.values: list[torch.Tensor | None] = [None] * n_layers

    def update(self, layer: int, k: torch.Tensor, v: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        ### BEGIN SOLUTION
        if self.keys[layer] is None:
            self.keys[layer], self.values[layer] = k, v
        else:
            self.keys[layer] = torch.cat([self.keys[layer], k], dim=2)
            self.values[layer] = torch.cat([self.values[layer], v], dim=2)
        return self.keys[layer], self.values[layer]
        ### END SOLUTION

    def seq_len(self) -> int:
        ### BEGIN SOLUTION
        return 0 if self.keys[0] is None else self.keys[0].shape[2]
        ### END SOLUTION


# %% [markdown] nbgrader={"grade": false, "grade_id": "forward-md", "locked": true, "schema_version": 3, "solution": false, "task": false}
# ## 2. 帶快取的前向傳播
#
# `attention_mask` 永遠涵蓋 **到目前為止的整段序列**（快取裡的位置＋這次新的 token），1 是真的 token，0 是 padding。
# - 位置編號（RoPE 用）只算真的 token：`positions_from_mask` 已提供（padding 的位置夾成 0，反正會被遮掉）。
# - `causal_mask(mask, new)`：回傳布林張量 `(batch, 1, new, total)`；新 token 的第 `i` 個（在整段裡的位置是
#   `total - new + i`）只能看見位置 `≤ total - new + i`、而且 mask 為 1 的 key。
# - `attention`：q、k、v 投影後 reshape 成 `(batch, heads, seq, head_dim)`，套 RoPE，**存進快取後** 再做
#   scaled dot-product attention；不允許的位置填上 `torch.finfo(dtype).min`（不要用 `-inf`：
#   整列都被遮掉的 padding query 會變成 NaN）。
# - 模型結構：`MODEL.model.embed_tokens` → 每層 `h = h + attn(input_layernorm(h))`、
#   `h = h + mlp(post_attention_layernorm(h))` → `MODEL.model.norm` → `MODEL.lm_head`。

# %% nbgrader={"grade": false, "grade_id": "positions", "locked": true, "schema_version": 3, "solution": false, "task": false}
def positions_from_mask(mask: torch.Tensor) -> torch.Tensor:
    """Position of each token among the real tokens of its row (padding clamps to 0)."""
    return (mask.long().cumsum(-1) - 1).clamp(min=0)


# %% nbgrader={"grade": false, "grade_id": "forward", "locked": false, "schema_version": 3, "solution": true, "task": false}
def causal_mask(mask: torch.Tensor, new: int) -> torch.Tensor:
    ### BEGIN SOLUTION
    total = mask.shape[1]
    causal = torch.ones(new, total, dtype=torch.bool).tril(total - new)
    return causal[None, None] & mask[:, None, None, :].bool()
    ### END SOLUTION


def attention(layer, x, cos, sin, mask, cache, index):
    attn = layer.self_attn
    batch, new, _ = x.shape
    head_dim = attn.head_dim
    ### BEGIN SOLUTION
    q = attn.q_proj(x).view(batch, new, -1, head_dim).transpose(1, 2)
    k = attn.k_proj(x).view(batch, new, -1, head_dim).transpose(1, 2)
    v = attn.v_proj(x).view(batch, new, -1, head_dim).transpose(1, 2)
    q, k = apply_rotary_pos_emb(q, k, cos, sin)
    if cache is not None:
        k, v = cache.update(index, k, v)
    groups = q.shape[1] // k.shape[1]  # grouped-query attention shares each kv head
    k, v = k.repeat_interleave(groups, 1), v.repeat_interleave(groups, 1)
    scores = q @ k.transpose(-1, -2) / math.sqrt(head_dim)
    scores = scores.masked_fill(~causal_mask(mask, new), torch.finfo(scores.dtype).min)
    out = scores.softmax(-1) @ v
    return attn.o_proj(out.transpose(1, 2).reshape(batch, new, -1))
    ### END SOLUTION


@torch.no_grad()
def forward(model, input_ids: torch.Tensor, attention_mask: torch.Tensor, cache: KVCache | None = None) -> torch.Tensor:
    """Logits (batch, new, vocab) of the new tokens `input_ids`; `attention_mask` covers past + new."""
    inner = model.model
    new = input_ids.shape[1]
    ### BEGIN SOLUTION
    positions = positions_from_mask(attention_mask)[:, -new:]
    h = inner.embed_tokens(input_ids)
    cos, sin = inner.rotary_emb(h, positions)
    for index, layer in enumerate(inner.layers):
        h = h + attention(layer, layer.input_layernorm(h), cos, sin, attention_mask, cache, index)
        h = h + layer.mlp(layer.post_attention_layernorm(h))
    return model.lm_head(inner.norm(h))
    ### END SOLUTION


# %% [markdown] nbgrader={"grade": false, "grade_id": "decode-md", "locked": true, "schema_version": 3, "solution": false, "task": false}
# ## 3. 逐步解碼的 logits
#
# `decode_logits(model, input_ids, attention_mask, new_tokens)`：先把 prompt 整段送進去（prefill，填滿快取），
# 再把 `new_tokens`（形狀 `(batch, steps)`，由呼叫者指定，不必是 argmax）**一次一個** 餵進去，每次只給新的那個
# token 與變長一格的 mask。回傳 `(batch, steps + 1, vocab)`：第 0 個是 prompt 之後的下一個 token 的 logits，
# 第 `i` 個是餵完 `new_tokens[:, i-1]` 之後的 logits。
#
# 注意：右 padding 時 prompt 的「最後一個真 token」不在最後一欄；`last_real` 已提供。

# %% nbgrader={"grade": false, "grade_id": "last-real", "locked": true, "schema_version": 3, "solution": false, "task": false}
def last_real(mask: torch.Tensor) -> torch.Tensor:
    """Index of the last real token of each row."""
    return mask.shape[1] - 1 - mask.flip(-1).long().argmax(-1)


# %% nbgrader={"grade": false, "grade_id": "decode-logits", "locked": false, "schema_version": 3, "solution": true, "task": false}
@torch.no_grad()
def decode_logits(model, input_ids, attention_mask, new_tokens) -> torch.Tensor:
    ### BEGIN SOLUTION
    cache = KVCache(len(model.model.layers))
    rows = torch.arange(input_ids.shape[0])
    steps = [forward(model, input_ids, attention_mask, cache)[rows, last_real(attention_mask)]]
    mask = attention_mask
    for i in range(new_tokens.shape[1]):
        mask = torch.cat([mask, mask.new_ones(mask.shape[0], 1)], dim=1)
        steps.append(forward(model, new_tokens[:, i:i + 1], mask, cache)[:, -1])
    return torch.stack(steps, dim=1)
    ### END SOLUTION


# %% nbgrader={"grade": true, "grade_id": "test-kv-cache", "locked": true, "points": 8, "schema_version": 3, "solution": false, "task": false}
_ids = torch.tensor([[5, 6, 7, 8], [0, 0, 9, 10]])
_mask = (_ids != 0).long()
_cache = KVCache(MODEL.config.num_hidden_layers)
forward(MODEL, _ids, _mask, _cache)
assert _cache.seq_len() == 4, f"快取應有 4 個位置，實際 {_cache.seq_len()}"
_new = torch.tensor([[11, 12], [13, 14]])
_got = decode_logits(MODEL, _ids, _mask, _new)
_full = torch.cat([_ids, _new], 1)
_fmask = torch.cat([_mask, torch.ones_like(_new)], 1)
_want = MODEL(input_ids=_full, attention_mask=_fmask, position_ids=positions_from_mask(_fmask)).logits[:, 3:]
assert _got.shape == _want.shape, f"形狀應為 {tuple(_want.shape)}，實際 {tuple(_got.shape)}"
assert torch.allclose(_got, _want, atol=1e-4), f"與不加快取的 logits 差 {(_got - _want).abs().max():.2e}"

# %% [markdown] nbgrader={"grade": false, "grade_id": "batch-md", "locked": true, "schema_version": 3, "solution": false, "task": false}
# ## 4. 批次 greedy 生成
#
# - `left_pad(sequences, pad_id)`：把長短不一的 token 列表 **左** 補齊，回傳 `(input_ids, attention_mask)`。
#   生成時新 token 接在右邊，左 padding 讓每列的最後一欄都是真 token。
# - `generate(model, input_ids, attention_mask, max_new_tokens, eos_token_id=None, use_cache=True)`：
#   每列各自 greedy；某列產生 `eos_token_id` 之後就算完成（之後餵 pad、mask 補 0），全部完成就提早結束。
#   回傳每列新產生的 token 列表（含 eos，不含之後的 pad）。`use_cache=False` 時每一步都重算整段序列
#   （用來比較速度）。

# %% nbgrader={"grade": false, "grade_id": "generate", "locked": false, "schema_version": 3, "solution": true, "task": false}
def left_pad(sequences: list[list[int]], pad_id: int) -> tuple[torch.Tensor, torch.Tensor]:
    ### BEGIN SOLUTION
    width = max(len(s) for s in sequences)
    ids = torch.tensor([[pad_id] * (width - len(s)) + list(s) for s in sequences])
    mask = torch.tensor([[0] * (width - len(s)) + [1] * len(s) for s in sequences])
    return ids, mask
    ### END SOLUTION


@torch.no_grad()
def generate(model, input_ids, attention_mask, max_new_tokens: int, eos_token_id: int | None = None,
             use_cache: bool = True) -> list[list[int]]:
    pad_id = tokenizer.pad_token_id
    ### BEGIN SOLUTION
    batch = input_ids.shape[0]
    cache = KVCache(len(model.model.layers)) if use_cache else None
    ids, mask = input_ids, attention_mask
    logits = forward(model, ids, mask, cache)[:, -1]
    done = torch.zeros(batch, dtype=torch.bool)
    rows: list[list[int]] = [[] for _ in range(batch)]
    for step in range(max_new_tokens):
        token = logits.argmax(-1).masked_fill(done, pad_id)
        for row, (t, finished) in enumerate(zip(token.tolist(), done.tolist())):
            if not finished:
                rows[row].append(t)
        if eos_token_id is not None:
            done |= token == eos_token_id
        if done.all() or step == max_new_tokens - 1:
            break
        ids = torch.cat([ids, token[:, None]], 1)
        mask = torch.cat([mask, (~done).long()[:, None]], 1)
        if use_cache:
            logits = forward(model, token[:, None], mask, cache)[:, -1]
        else:
            logits = forward(model, ids, mask)[:, -1]
    return rows
    ### END SOLUTION


# %% nbgrader={"grade": false, "grade_id": "demo", "locked": true, "schema_version": 3, "solution": false, "task": false}
PROMPTS = ["### Instruction:\nSay hello\n\n### Response:\n", "### Instruction:\nCount to three\n\n### Response:\n"]
_ids, _mask = left_pad([tokenizer(p).input_ids for p in PROMPTS], tokenizer.pad_token_id)
for prompt, row in zip(PROMPTS, generate(MODEL, _ids, _mask, 12, tokenizer.eos_token_id)):
    print(prompt.splitlines()[1], "->", repr(tokenizer.decode(row, skip_special_tokens=True)))
for use_cache in (True, False):
    start = time.perf_counter()
    generate(MODEL, *left_pad([list(range(3, 131))] * 2, 0), 32, use_cache=use_cache)
    print(f"use_cache={use_cache}: {time.perf_counter() - start:.3f} s")

# %% nbgrader={"grade": false, "grade_id": "grader-seam", "locked": true, "schema_version": 3, "solution": false, "task": false}
# What the grader calls (JSON and tensors in, JSON and tensors out).
def cache_shapes(input_ids, attention_mask, next_tokens) -> list[list[list[int]]]:
    """Each layer's key and value shapes after the prompt and one more token per row."""
    cache = KVCache(len(MODEL.model.layers))
    forward(MODEL, input_ids, attention_mask, cache)
    forward(MODEL, next_tokens[:, None], torch.cat([attention_mask, torch.ones_like(next_tokens)[:, None]], 1), cache)
    return [[list(k.shape), list(v.shape)] for k, v in zip(cache.keys, cache.values)]


def cached_logits(input_ids, attention_mask, new_tokens):
    return decode_logits(MODEL, input_ids, attention_mask, new_tokens)


def batched_generate(sequences: list[list[int]], max_new_tokens: int, eos_token_id=None) -> list[list[int]]:
    return generate(MODEL, *left_pad(sequences, tokenizer.pad_token_id), max_new_tokens, eos_token_id)


def timed_generate(sequences: list[list[int]], max_new_tokens: int, use_cache: bool) -> int:
    """Decodes and returns the number of tokens; the grader times the call from outside."""
    return sum(map(len, generate(MODEL, *left_pad(sequences, tokenizer.pad_token_id), max_new_tokens,
                                 use_cache=use_cache)))


# %% nbgrader={"grade": true, "grade_id": "test-generate", "locked": true, "points": 7, "schema_version": 3, "solution": false, "task": false}
_ids, _mask = left_pad([[5, 6, 7], [8, 9]], tokenizer.pad_token_id)
assert _ids.tolist() == [[5, 6, 7], [tokenizer.pad_token_id, 8, 9]] and _mask.tolist() == [[1, 1, 1], [0, 1, 1]], "left_pad 應在左邊補 pad"
_alone = generate(MODEL, *left_pad([[8, 9]], tokenizer.pad_token_id), 5)[0]
assert generate(MODEL, _ids, _mask, 5)[1] == _alone, "批次中的一列應等於它單獨生成的結果"
_eos = _alone[1]
assert generate(MODEL, *left_pad([[8, 9]], tokenizer.pad_token_id), 5, _eos)[0] == _alone[:_alone.index(_eos) + 1], "產生 eos 後該列應停止（含 eos）"
