"""01-setup: the attention mask and labels extended for the soft prompt; initial token ids from text."""
import math

import pytest
import torch

from graders.plugin import say
from graders.plugin.outcomes import Diagnosed

NB = "01-setup"


def _batch(rng):
    """A padded batch: rows of different lengths, padding on the right or the left, some labels masked."""
    batch, length = int(torch.randint(2, 5, (1,), generator=rng)), int(torch.randint(5, 10, (1,), generator=rng))
    mask = torch.ones(batch, length, dtype=torch.long)
    labels = torch.randint(3, 500, (batch, length), generator=rng)
    for row in range(batch):
        pad = int(torch.randint(0, length - 2, (1,), generator=rng))
        if pad:
            where = slice(0, pad) if row % 2 else slice(length - pad, length)
            mask[row, where] = 0
            labels[row, where] = -100
        labels[row, : int(torch.randint(0, 3, (1,), generator=rng))] = -100
    return mask, labels, int(torch.randint(2, 9, (1,), generator=rng))


@pytest.mark.check(points=3, cell="test-extend", title={"zh": "attention mask 與 labels 的延長", "en": "attention mask and labels extended"},
                   hint={"zh": "前面補 n 個：attention_mask 補 1、labels 補 -100；形狀 (batch, n + L)。",
                         "en": "Prepend n entries: 1 to attention_mask, -100 to labels; shape (batch, n + L)."})
def test_extend_for_prompt(submission, rng):
    mask, labels, n = _batch(rng)
    got = submission.nb(NB).call("extend_for_prompt", mask.clone(), labels.clone(), n)
    want_mask = torch.cat([torch.ones(mask.shape[0], n, dtype=mask.dtype), mask], dim=1)
    want_labels = torch.cat([torch.full((labels.shape[0], n), -100, dtype=labels.dtype), labels], dim=1)
    got_mask, got_labels = torch.as_tensor(got["attention_mask"]), torch.as_tensor(got["labels"])
    if tuple(got_mask.shape) != tuple(want_mask.shape) or tuple(got_labels.shape) != tuple(want_labels.shape):
        raise Diagnosed(say(f"形狀應為 {tuple(want_mask.shape)}（batch, n + L），實際 mask {tuple(got_mask.shape)}、"
                            f"labels {tuple(got_labels.shape)}。",
                            f"Shapes should be {tuple(want_mask.shape)} (batch, n + L); got mask {tuple(got_mask.shape)}, "
                            f"labels {tuple(got_labels.shape)}."))
    problems = []
    if not torch.equal(got_mask, want_mask):
        if torch.equal(got_mask[:, :n], torch.zeros_like(got_mask[:, :n])):
            problems.append(say("attention_mask 前面補了 0：真實 token 看不到 soft prompt，應補 1。",
                                "attention_mask was prefixed with 0: real tokens cannot attend to the soft prompt; prefix 1."))
        elif torch.equal(got_mask[:, -n:], torch.ones_like(got_mask[:, -n:])) and not torch.equal(got_mask[:, n:], mask):
            problems.append(say("1 補在後面了：soft prompt 在序列前面，mask 也要補在前面。",
                                "The ones were appended: the soft prompt comes first, so the mask is prefixed."))
        else:
            problems.append(say("attention_mask 應為 [1]*n 接上原本的 mask。", "attention_mask should be [1]*n followed by the original mask."))
    if not torch.equal(got_labels, want_labels):
        head = got_labels[:, :n]
        if not torch.equal(head, torch.full_like(head, -100)) and torch.equal(got_labels[:, n:], labels):
            problems.append(say(f"labels 前面補的是 {head[0].tolist()}，應為 -100：virtual token 沒有要預測的答案。",
                                f"labels were prefixed with {head[0].tolist()}, not -100: virtual tokens have no target."))
        else:
            problems.append(say("labels 應為 [-100]*n 接上原本的 labels。", "labels should be [-100]*n followed by the original labels."))
    if problems:
        raise Diagnosed(" ".join(problems))


@pytest.mark.check(points=2, cell="test-init-ids", title={"zh": "從文字取得初始化的 token id", "en": "initial token ids from text"},
                   hint={"zh": "tokenizer(text, add_special_tokens=False)；太長截斷、太短整串重複再截斷。",
                         "en": "tokenizer(text, add_special_tokens=False); cut when too long, repeat the whole list then cut when too short."})
def test_init_ids(submission, profile, rng):
    from common_utils.models import load_tokenizer

    tok = load_tokenizer(profile)
    words = ["answer", "the", "question", "translate", "word", "summary", "reverse", "capital", "貓", "狗"]
    for count in (int(torch.randint(2, 4, (1,), generator=rng)), int(torch.randint(12, 18, (1,), generator=rng))):
        text = " ".join(words[int(i)] for i in torch.randint(len(words), (count,), generator=rng))
        ids = tok(text, add_special_tokens=False)["input_ids"]
        for n in (max(1, len(ids) // 2), len(ids) * 2 + 1):
            want = (ids * math.ceil(n / len(ids)))[:n]
            got = submission.nb(NB).call("init_ids_for", text, n)
            if got == want:
                continue
            if len(got) != n:
                raise Diagnosed(say(f"n={n} 時應回傳 {n} 個 id，實際 {len(got)} 個（文字有 {len(ids)} 個 token）。",
                                    f"With n={n} it should return {n} ids; got {len(got)} (the text has {len(ids)} tokens)."))
            raise Diagnosed(say(f"文字 {text!r}、n={n}：預期 {want}，實際 {got}。太短時要把整串重複。",
                                f"Text {text!r}, n={n}: expected {want}, got {got}. When too short, repeat the whole list."))
