"""02-train part 1: the PrefixEncoder and the prefix forward written from scratch, against peft's
prefix tuning given the same weights, on sizes, weights and batches the grader draws."""
import pytest
import torch

from graders.plugin import say
from graders.plugin.outcomes import Diagnosed

NB = "02-train"


def _sizes(rng, projection: bool) -> dict:
    heads = int(torch.randint(2, 5, (1,), generator=rng))
    return {"num_virtual_tokens": int(torch.randint(2, 7, (1,), generator=rng)),
            "num_layers": int(torch.randint(2, 4, (1,), generator=rng)),  # one layer hides a (key/value, layer) mix-up
            "num_heads": heads, "head_dim": heads + int(torch.randint(1, 4, (1,), generator=rng)),  # never = heads
            "prefix_projection": projection,
            "encoder_hidden_size": int(torch.randint(3, 10, (1,), generator=rng)) if projection else None}


@pytest.mark.check(points=3, cell="test-encoder", title={"zh": "每層 key/value prefix 的形狀與參數量", "en": "key/value prefix shapes per layer and head, and the parameter count"},
                   hint={"zh": "forward(batch) 回傳 num_layers 對 (key, value)，各為 (batch, heads, n, head_dim)；有 MLP 時參數是 P' 加兩層 Linear。",
                         "en": "forward(batch) returns num_layers pairs (key, value), each (batch, heads, n, head_dim); with the MLP the parameters are P' and two Linear layers."})
def test_kv_shapes(submission, rng, peft_prefix):
    for projection in (False, True):
        sizes, batch = _sizes(rng, projection), int(torch.randint(1, 4, (1,), generator=rng))
        got = submission.nb(NB).call("encoder_kv", sizes, None, batch)
        kv, layers = got["kv"], sizes["num_layers"]
        want = (batch, sizes["num_heads"], sizes["num_virtual_tokens"], sizes["head_dim"])
        if len(kv) != layers or any(len(pair) != 2 for pair in kv):
            raise Diagnosed(say(f"大小 {sizes}：應回傳 {layers} 對 (key, value)（每層一對），實際 {len(kv)} 項。",
                                f"Sizes {sizes}: expected {layers} (key, value) pairs, one per layer; got {len(kv)} items."))
        shapes = sorted({tuple(t.shape) for pair in kv for t in pair})
        if shapes != [want]:
            raise Diagnosed(say(f"大小 {sizes}、batch {batch}：key/value 應為 (batch, heads, n, head_dim) = {want}，實際 {shapes}。",
                                f"Sizes {sizes}, batch {batch}: keys and values should be (batch, heads, n, head_dim) = {want}; "
                                f"got {shapes}."))
        expected = sum(p.numel() for p in peft_prefix.model(sizes).prompt_encoder["default"].parameters())
        if int(got["trainable"]) != expected:
            raise Diagnosed(say(f"大小 {sizes}：PrefixEncoder 的可訓練參數應為 {expected:,}（與 peft 相同），實際 {int(got['trainable']):,}。",
                                f"Sizes {sizes}: the PrefixEncoder should train {expected:,} parameters (as peft's does); "
                                f"got {int(got['trainable']):,}."))


@pytest.mark.check(points=4, cell="test-encoder", title={"zh": "PrefixEncoder 與 peft 的 prefix 相同（同樣的權重）", "en": "PrefixEncoder equals peft's prefix (same weights)"},
                   hint={"zh": "每個 virtual token 的 2Ld 個數依序是 (層, key/value, head, head_dim)；MLP 是 Linear → Tanh → Linear。",
                         "en": "The 2Ld numbers of a virtual token are ordered (layer, key/value, head, head_dim); the MLP is Linear -> Tanh -> Linear."},
                   visibility="hidden")
def test_equals_peft(submission, rng, peft_prefix):
    for projection in (False, True):
        sizes, batch = _sizes(rng, projection), int(torch.randint(1, 4, (1,), generator=rng))
        model = peft_prefix.model(sizes)
        state = peft_prefix.draw(model, rng, scale=0.5)
        want = peft_prefix.kv(model, batch)
        got = [tuple(pair) for pair in submission.nb(NB).call("encoder_kv", sizes, state, batch)["kv"]]
        shapes = [tuple(t.shape) for pair in got for t in pair]
        if len(got) != len(want) or shapes != [tuple(t.shape) for pair in want for t in pair]:
            raise Diagnosed(say(f"大小 {sizes}：prefix 的結構或形狀與 peft 不同（見「形狀」那項檢查）。",
                                f"Sizes {sizes}: the prefix's structure or shapes differ from peft's (see the shapes check)."))
        close = [[torch.allclose(g, w, atol=1e-5) for g, w in zip(gp, wp)] for gp, wp in zip(got, want)]
        if all(all(row) for row in close):
            continue
        what = say("有 MLP" if projection else "沒有 MLP", "with the MLP" if projection else "without the MLP")
        if all(torch.allclose(gp[0], wp[1], atol=1e-5) and torch.allclose(gp[1], wp[0], atol=1e-5) for gp, wp in zip(got, want)):
            why = say("key 與 value 對調了：每層先 key 後 value。", "keys and values are swapped: each layer holds its key first, then its value.")
        elif torch.allclose(*(torch.cat([t.flatten() for pair in kv for t in pair]).sort().values for kv in (got, want)), atol=1e-5):
            why = say("數值都對，但放錯位置：2Ld 的順序是 (層, key/value, head, head_dim)，再把 n 移到 head 之後。",
                      "The numbers are right but misplaced: the 2Ld order is (layer, key/value, head, head_dim), then n moves after the heads.")
        else:
            gap = max(float((g - w).abs().max()) for gp, wp in zip(got, want) for g, w in zip(gp, wp))
            why = say(f"數值不同（最多差 {gap:.3g}）：MLP 是 Linear → Tanh → Linear 嗎？",
                      f"the values differ (by up to {gap:.3g}): is the MLP Linear -> Tanh -> Linear?")
        raise Diagnosed(say(f"{what}、大小 {sizes}：prefix 與 peft 的不同：", f"{what}, sizes {sizes}: the prefix differs from peft's: ") + why)


def _run(base, prefix, ids, mask, positions):
    """The grader's own prefixed forward: a fresh cache holding ``prefix``, the mask and positions given;
    run on the model's device, the logits returned on the CPU."""
    from transformers import DynamicCache

    from common_utils.training import model_device, to_device

    device = model_device(base)
    cache = DynamicCache()
    for layer, (key, value) in enumerate(prefix):
        cache.update(key.to(device, copy=True), value.to(device, copy=True), layer)
    inputs = to_device({"input_ids": ids, "attention_mask": mask, "position_ids": positions}, device)
    with torch.no_grad():
        return base(**inputs, past_key_values=cache).logits.cpu()


def _prefix_on_profile(peft_prefix, profile, rng, n: int, batch: int):
    """peft's prefix tuning on the profile's GPT-2 with drawn keys and values: (peft model, base, prefix on the CPU)."""
    from common_utils.models import load_model

    base = load_model("gpt2", profile).eval()
    config = base.config
    sizes = {"num_virtual_tokens": n, "num_layers": config.n_layer, "num_heads": config.n_head,
             "head_dim": config.n_embd // config.n_head, "prefix_projection": False, "encoder_hidden_size": None}
    model = peft_prefix.model(sizes, base)
    peft_prefix.draw(model, rng)
    return model, model.get_base_model(), [(k.cpu(), v.cpu()) for k, v in peft_prefix.kv(model, batch)]


@pytest.mark.check(points=3, cell="test-forward", title={"zh": "帶 prefix 的 forward 與 peft 相同", "en": "the prefixed forward equals peft's"},
                   hint={"zh": "DynamicCache 逐層 update(key, value, layer)；mask 前面補 n 個 1；position_ids 從 n 開始；labels 不延長。",
                         "en": "A DynamicCache filled with update(key, value, layer); n ones before the mask; position_ids from n; labels unchanged."},
                   timeout=120, visibility="hidden")
def test_forward_equals_peft(submission, profile, rng, peft_prefix):
    from common_utils.training import model_device, to_device

    n = int(torch.randint(2, 8, (1,), generator=rng))
    model, base, prefix = _prefix_on_profile(peft_prefix, profile, rng, n, 2)
    ids = torch.randint(3, base.config.vocab_size, (2, int(torch.randint(6, 11, (1,), generator=rng))), generator=rng)
    mask = torch.ones_like(ids)
    labels = ids.clone()
    labels[:, :2] = -100  # prompt tokens
    with torch.no_grad():
        want = model(**to_device({"input_ids": ids, "attention_mask": mask, "labels": labels}, model_device(model)))
    want_logits = want.logits.cpu()
    got = submission.nb(NB).call("prefix_logits", [list(p) for p in prefix], ids, mask, labels)
    logits = got["logits"]
    if tuple(logits.shape) != tuple(want_logits.shape):
        raise Diagnosed(say(f"logits 形狀應為 (batch, L, vocab) = {tuple(want_logits.shape)}，實際 {tuple(logits.shape)}：prefix 在 cache 裡，不在輸入裡。",
                            f"The logits should be (batch, L, vocab) = {tuple(want_logits.shape)}; got {tuple(logits.shape)}: "
                            "the prefix lives in the cache, not in the input."))
    if not torch.allclose(logits, want_logits, atol=1e-4, rtol=1e-4):
        ones = torch.ones(2, n, dtype=mask.dtype)
        from_n = torch.arange(n, n + ids.shape[1]).expand(2, -1)
        known_wrong = {
            say("position_ids 從 0 開始：cache 裡已有 n 個位置，第一個真實 token 在 n（GPT-2 自己也這樣算）。",
                "position_ids start at 0: the cache holds n positions, so the first real token is at n (as GPT-2 itself counts)."):
                _run(base, prefix, ids, torch.cat([ones, mask], 1), from_n - n),
            say("attention_mask 前面補了 0：prefix 被遮掉，等於不存在。", "The mask was prefixed with 0: the prefix is masked out."):
                _run(base, prefix, ids, torch.cat([0 * ones, mask], 1), from_n),
        }
        for why, value in known_wrong.items():
            if torch.allclose(logits, value, atol=1e-4, rtol=1e-4):
                raise Diagnosed(why)
        gap = (logits - want_logits).abs().max().item()
        raise Diagnosed(say(f"logits 與 peft 的 prefix tuning 最多差 {gap:.3g}。", f"The logits differ from peft's prefix tuning by up to {gap:.3g}."))
    if abs(float(got["loss"]) - float(want.loss)) > 1e-4 * max(1.0, abs(float(want.loss))):
        raise Diagnosed(say(f"logits 正確，但 loss {float(got['loss']):.4f} 與 peft 的 {float(want.loss):.4f} 不同：labels 原樣傳給模型。",
                            f"The logits are right but the loss {float(got['loss']):.4f} differs from peft's {float(want.loss):.4f}: "
                            "pass the labels to the model unchanged."))


@pytest.mark.check(points=4, cell="test-forward", title={"zh": "left padding 的批次 = 每列單獨跑", "en": "a left-padded batch equals each row run alone"},
                   hint={"zh": "padding 不能改變結果：mask 是 [1]*n 接原本的 mask；position_ids 只數真實 token（cumsum(mask) - 1 + n）。",
                         "en": "Padding must not change the result: the mask is [1]*n then the original; position_ids count real tokens only (cumsum(mask) - 1 + n)."},
                   timeout=180, visibility="hidden")
def test_left_padded_equals_rows(submission, profile, rng, peft_prefix):
    from common_utils.models import load_tokenizer

    n, batch = int(torch.randint(2, 8, (1,), generator=rng)), 3
    _, base, prefix = _prefix_on_profile(peft_prefix, profile, rng, n, batch)
    length = int(torch.randint(7, 12, (1,), generator=rng))
    lengths = [length] + [int(torch.randint(2, length - 1, (1,), generator=rng)) for _ in range(batch - 1)]
    ids = torch.full((batch, length), load_tokenizer(profile, "gpt2").pad_token_id, dtype=torch.long)
    mask = torch.zeros(batch, length, dtype=torch.long)
    for row, size in enumerate(lengths):  # left padding: the real tokens at the end of each row
        ids[row, length - size:] = torch.randint(3, base.config.vocab_size, (size,), generator=rng)
        mask[row, length - size:] = 1
    student = submission.nb(NB)
    padded = student.call("prefix_logits", [list(p) for p in prefix], ids, mask)["logits"]
    wrong = []
    for row, size in enumerate(lengths):
        alone_prefix = [[k[row:row + 1], v[row:row + 1]] for k, v in prefix]
        alone = student.call("prefix_logits", alone_prefix, ids[row:row + 1, length - size:], mask[row:row + 1, length - size:])["logits"]
        if tuple(padded.shape[:2]) != (batch, length) or not torch.allclose(padded[row, length - size:], alone[0], atol=1e-4, rtol=1e-4):
            wrong.append(row)
    if wrong:
        raise Diagnosed(say(f"列 {wrong}（padding 分別是 {[length - lengths[r] for r in wrong]} 個）在批次裡的 logits 與單獨跑不同："
                            "left padding 的列，真實 token 的位置仍從 n 開始，mask 的 1 要接在 prefix 後面、padding 之前。",
                            f"Rows {wrong} (padded by {[length - lengths[r] for r in wrong]}) give other logits in the batch than alone: "
                            "in a left-padded row the real tokens still start at position n, and the prefix's ones go before the padding."))
