"""01-kv-cache: the cache's shapes and logits with the cache == logits without it, every step."""
import pytest
import torch

from graders.plugin import say
from graders.suites.inference import random_prompts

NB = "01-kv-cache"


def padded(prompts: list[list[int]], side: str, pad_id: int) -> tuple[torch.Tensor, torch.Tensor]:
    width = max(map(len, prompts))
    rows, masks = [], []
    for p in prompts:
        fill = width - len(p)
        rows.append([pad_id] * fill + p if side == "left" else p + [pad_id] * fill)
        masks.append([0] * fill + [1] * len(p) if side == "left" else [1] * len(p) + [0] * fill)
    return torch.tensor(rows), torch.tensor(masks)


@torch.no_grad()
def uncached_step_logits(model, ids, mask, new_tokens) -> torch.Tensor:
    """(batch, steps + 1, vocab): one forward over prompt + new tokens, read where each step predicts."""
    full = torch.cat([ids, new_tokens], 1)
    full_mask = torch.cat([mask, torch.ones_like(new_tokens)], 1)
    positions = (full_mask.cumsum(-1) - 1).clamp(min=0)
    logits = model(input_ids=full, attention_mask=full_mask, position_ids=positions).logits
    last = mask.shape[1] - 1 - mask.flip(-1).argmax(-1)
    rows = torch.arange(ids.shape[0])
    return torch.stack([logits[rows, last]] + [logits[:, ids.shape[1] + i] for i in range(new_tokens.shape[1])], 1)



@pytest.mark.check(points=2, cell="test-kv-cache", title={"zh": "每層快取的形狀", "en": "cache shapes per layer"},
                   hint={"zh": "每層存 (batch, kv_heads, seq, head_dim)；沿 dim=2 接上新的 key/value。",
                         "en": "Each layer holds (batch, kv_heads, seq, head_dim); append along dim=2."})
def test_cache_shapes(submission, model, tokenizer, rng):
    ids, mask = padded(random_prompts(rng, tokenizer, 3), "left", tokenizer.pad_token_id)
    next_tokens = torch.randint(max(tokenizer.all_special_ids) + 1, len(tokenizer), (ids.shape[0],), generator=rng)
    got = submission.nb(NB).call("cache_shapes", ids, mask, next_tokens)
    cfg = model.config  # after the prompt and one decoding step: seq = prompt width + 1
    shape = [ids.shape[0], cfg.num_key_value_heads, ids.shape[1] + 1, cfg.hidden_size // cfg.num_attention_heads]
    want = [[shape, shape]] * cfg.num_hidden_layers
    assert got == want, say(f"快取形狀應為每層 {shape}（key 與 value），實際 {got}。",
                            f"The cache should hold {shape} per layer (keys and values); got {got}.")


def _logits_check(side, submission, model, tokenizer, rng, assignment):
    ids, mask = padded(random_prompts(rng, tokenizer, 3), side, tokenizer.pad_token_id)
    new = torch.randint(max(tokenizer.all_special_ids) + 1, len(tokenizer), (ids.shape[0], 5), generator=rng)
    got = submission.nb(NB).call("cached_logits", ids, mask, new)
    want = uncached_step_logits(model, ids, mask, new)
    assert tuple(got.shape) == tuple(want.shape), say(f"形狀應為 {tuple(want.shape)}，實際 {tuple(got.shape)}。",
                                                      f"Expected shape {tuple(want.shape)}, got {tuple(got.shape)}.")
    atol = assignment.settings["targets"]["kv_logits_atol"]
    errors = (got.float() - want).abs().amax(dim=(0, 2))
    bad = [i for i, e in enumerate(errors.tolist()) if not e <= atol]
    assert not bad, say(f"{side} padding：第 {bad} 步與不加快取的 logits 不同（最大誤差 {errors.max():.2e}，容許 {atol}）。",
                        f"{side} padding: steps {bad} differ from the uncached logits (max error {errors.max():.2e}, "
                        f"tolerance {atol}).")


@pytest.mark.check(points=3, cell="test-kv-cache", title={"zh": "右 padding：每一步 logits 與不加快取相同",
                                                          "en": "right padding: logits equal the uncached ones at every step"},
                   hint={"zh": "右 padding 時 prompt 的下一個 token 要看最後一個真 token；mask 要涵蓋快取裡的 padding；位置只算真 token。",
                         "en": "With right padding the next token comes from the last real token; the mask must cover the "
                               "cached padding; positions count real tokens only."},
                   visibility="hidden")
def test_logits_right_padding(submission, model, tokenizer, rng, assignment):
    _logits_check("right", submission, model, tokenizer, rng, assignment)


@pytest.mark.check(points=3, cell="test-kv-cache", title={"zh": "左 padding：每一步 logits 與不加快取相同",
                                                          "en": "left padding: logits equal the uncached ones at every step"},
                   hint={"zh": "mask 要遮掉左邊的 pad（快取裡的也是）；新 token 的 key/value 要接在快取之後。",
                         "en": "The mask hides the left pads (the cached ones too); new keys/values go after the cache."})
def test_logits_left_padding(submission, model, tokenizer, rng, assignment):
    _logits_check("left", submission, model, tokenizer, rng, assignment)
