"""01-setup: the attention mask and position ids for a prefix (left and right padding); the
parameter count by formula against peft's prefix tuning on a GPT-2 the grader describes."""
import pytest
import torch

from graders.plugin import say
from graders.plugin.outcomes import Diagnosed

NB = "01-setup"


def _padded_mask(rng) -> torch.Tensor:
    """Rows of different lengths: odd rows padded on the left, even rows on the right, one row unpadded."""
    batch, length = int(torch.randint(3, 6, (1,), generator=rng)), int(torch.randint(5, 10, (1,), generator=rng))
    mask = torch.ones(batch, length, dtype=torch.long)
    for row in range(1, batch):
        pad = int(torch.randint(1, length - 1, (1,), generator=rng))
        mask[row, :pad] = 0 if row % 2 else 1
        mask[row, length - pad:] = 1 if row % 2 else 0
    return mask


@pytest.mark.check(points=3, cell="test-mask", title={"zh": "prefix 的 attention mask 與 position ids", "en": "attention mask and position ids for a prefix"},
                   hint={"zh": "mask 前面補 n 個 1；每列第 k 個真實 token 的位置是 n + k（left padding 也一樣）。",
                         "en": "Prepend n ones to the mask; the k-th real token of each row sits at position n + k (left padding too)."})
def test_mask_and_positions(submission, rng):
    mask, n = _padded_mask(rng), int(torch.randint(2, 9, (1,), generator=rng))
    got = submission.nb(NB).call("mask_and_positions_for", mask.clone(), n)
    got_mask, got_pos = torch.as_tensor(got["attention_mask"]), torch.as_tensor(got["position_ids"])
    want_mask = torch.cat([torch.ones(mask.shape[0], n, dtype=mask.dtype), mask], dim=1)
    want_pos = (mask.cumsum(-1) - 1).clamp(min=0) + n
    if tuple(got_mask.shape) != tuple(want_mask.shape) or tuple(got_pos.shape) != tuple(mask.shape):
        raise Diagnosed(say(f"形狀應為 attention_mask {tuple(want_mask.shape)}（batch, n + L）、position_ids {tuple(mask.shape)}；"
                            f"實際 {tuple(got_mask.shape)}、{tuple(got_pos.shape)}。",
                            f"Shapes should be attention_mask {tuple(want_mask.shape)} (batch, n + L) and position_ids "
                            f"{tuple(mask.shape)}; got {tuple(got_mask.shape)} and {tuple(got_pos.shape)}."))
    problems = []
    if not torch.equal(got_mask, want_mask):
        if torch.equal(got_mask[:, :n], torch.zeros_like(got_mask[:, :n])):
            problems.append(say("attention_mask 前面補了 0：真實 token 看不到 prefix，應補 1。",
                                "attention_mask was prefixed with 0: real tokens cannot attend to the prefix; prefix 1."))
        else:
            problems.append(say("attention_mask 應為 [1]*n 接上原本的 mask（prefix 在 cache 的最前面）。",
                                "attention_mask should be [1]*n followed by the original mask (the prefix comes first in the cache)."))
    real = mask.bool()
    if not torch.equal(got_pos[real], want_pos[real]):
        rows = [r for r in range(mask.shape[0]) if not torch.equal(got_pos[r][real[r]], want_pos[r][real[r]])]
        left = [r for r in rows if mask[r, 0] == 0]
        if torch.equal(got_pos[real], want_pos[real] - n):
            problems.append(say("position_ids 從 0 開始：cache 裡已有 n 個 prefix 位置，第一個真實 token 是 n。",
                                "position_ids start at 0: the cache already holds n prefix positions, so the first real token is at n."))
        elif rows == left:
            problems.append(say(f"left padding 的列 {rows} 位置錯了：位置只數真實 token（例如 cumsum(mask) - 1 + n），"
                                "padding 不能把它們往後推。",
                                f"Left-padded rows {rows} have wrong positions: count real tokens only (e.g. cumsum(mask) - 1 + n); "
                                "padding must not push them along."))
        else:
            problems.append(say(f"列 {rows} 的 position_ids 錯了：第 k 個真實 token 的位置應為 n + k。",
                                f"Rows {rows} have wrong position_ids: the k-th real token should be at n + k."))
    if problems:
        raise Diagnosed(" ".join(problems))


def peft_count(peft_prefix, sizes: dict, heads: int) -> int:
    """Trainable parameters of peft's prefix tuning on a GPT-2 of ``sizes`` with ``heads`` attention heads."""
    model = peft_prefix.model({**sizes, "num_heads": heads, "head_dim": sizes["hidden_size"] // heads})
    return sum(p.numel() for p in model.parameters() if p.requires_grad)


@pytest.mark.check(points=3, cell="test-count", title={"zh": "prefix tuning 參數量公式（grader 選的大小，有無 MLP）", "en": "the prefix-tuning count formula (grader-chosen sizes, with and without the MLP)"},
                   hint={"zh": "沒有 MLP：n × 2 × layers × hidden；有 MLP：n × hidden，加上 Linear(hidden, h) 與 Linear(h, 2 × layers × hidden) 的 weight 和 bias。",
                         "en": "Without the MLP: n * 2 * layers * hidden; with it: n * hidden plus weights and biases of Linear(hidden, h) and Linear(h, 2 * layers * hidden)."})
def test_count_matches_peft(submission, rng, peft_prefix):
    heads = int(torch.randint(2, 5, (1,), generator=rng))
    base = {"num_layers": int(torch.randint(1, 4, (1,), generator=rng)),
            "hidden_size": heads * int(torch.randint(2, 6, (1,), generator=rng)),
            "num_virtual_tokens": int(torch.randint(2, 12, (1,), generator=rng)),
            "encoder_hidden_size": int(torch.randint(3, 20, (1,), generator=rng))}
    for projection in (False, True):
        sizes = {**base, "prefix_projection": projection}
        want = peft_count(peft_prefix, sizes, heads)
        got = int(submission.nb(NB).call("count_for", sizes))
        if got == want:
            continue
        n, layers, d, h = sizes["num_virtual_tokens"], sizes["num_layers"], sizes["hidden_size"], sizes["encoder_hidden_size"]
        numbers = say(f"大小 {sizes}：預期 {want:,}，實際 {got:,}。", f"Sizes {sizes}: expected {want:,}, got {got:,}. ")
        if got == want - (n * layers * d if not projection else h * layers * d + layers * d):
            why = say("只算了 key 沒算 value：每層的 prefix 有 key 與 value 兩份。",
                      "Keys only: every layer's prefix holds a key and a value.")
        elif projection and got == want - h - 2 * layers * d:
            why = say("漏了 MLP 的 bias：兩個 Linear 都有 bias。", "The MLP's biases are missing: both Linear layers have one.")
        elif projection and got == want - n * d:
            why = say("漏了 P'（n × hidden 的 embedding）：MLP 的輸入本身也是可訓練的。",
                      "P' (the n x hidden embedding) is missing: the MLP's input is trained too.")
        else:
            why = say("沒有 MLP：n × 2 × layers × hidden；有 MLP：n × hidden + (hidden × h + h) + (h × 2·layers·hidden + 2·layers·hidden)。",
                      "Without the MLP: n * 2 * layers * hidden; with it: n * hidden + (hidden * h + h) + (h * 2*layers*hidden + 2*layers*hidden).")
        raise Diagnosed(numbers + why)
