"""01-setup: encoding a batch and counting what BitFit trains."""
import pytest
import torch
from torch import nn

from graders.plugin import say
from graders.plugin.outcomes import Diagnosed

NB = "01-setup"


def _texts(rng, n: int) -> tuple[list[str], list[int]]:
    from common_utils.datasets import load_course_dataset

    rows = load_course_dataset("sentiment", "tiny")  # shipped texts under every profile: only their tokens matter
    pick = torch.randperm(len(rows), generator=rng)[:n].tolist()
    texts = [rows[i]["text"] for i in pick]
    texts[0] = " ".join(texts)  # one text longer than max_length: truncation is checked on it
    return texts, [int(torch.randint(0, 2, (1,), generator=rng)) for _ in texts]


@pytest.mark.check(points=2, cell="test-encode", title={"zh": "encode：截斷、padding 與 labels", "en": "encode: truncation, padding and labels"},
                   hint={"zh": "tokenizer(texts, padding=True, truncation=True, max_length=max_length, return_tensors='pt')，labels 轉成 long tensor。",
                         "en": "tokenizer(texts, padding=True, truncation=True, max_length=max_length, return_tensors='pt'); labels as a long tensor."})
def test_encode_matches_tokenizer(submission, profile, rng):
    from common_utils.models import load_tokenizer

    tok = load_tokenizer(profile, family="bert")
    texts, labels = _texts(rng, int(torch.randint(3, 7, (1,), generator=rng)))
    max_length = int(torch.randint(8, 20, (1,), generator=rng))
    got = submission.nb(NB).call("encode_on", texts, labels, max_length)
    want = tok(texts, truncation=True, max_length=max_length)["input_ids"]
    ids, mask = got["input_ids"], got["attention_mask"]
    if ids.shape[1] > max_length:
        raise Diagnosed(say(f"input_ids 有 {ids.shape[1]} 欄，超過 max_length={max_length}：請設 truncation=True。",
                            f"input_ids has {ids.shape[1]} columns, more than max_length={max_length}: set truncation=True."))
    rows = [ids[i][mask[i].bool()].tolist() for i in range(len(texts))]
    bad = [i for i in range(len(texts)) if rows[i] != want[i]]
    assert not bad, say(f"第 {bad[0]} 句 attention_mask 為 1 的 token 與 tokenizer 的結果不同：{rows[bad[0]][:8]}… 應為 {want[bad[0]][:8]}…",
                        f"Row {bad[0]}: the tokens where attention_mask is 1 differ from the tokenizer's: "
                        f"{rows[bad[0]][:8]}... expected {want[bad[0]][:8]}...")
    assert got["labels"].dtype == torch.long and got["labels"].tolist() == labels, say(
        f"labels 應為 long tensor {labels}，實際 {got['labels'].tolist()}（{got['labels'].dtype}）。",
        f"labels should be the long tensor {labels}; got {got['labels'].tolist()} ({got['labels'].dtype}).")


def _expected_count(profile: str, num_labels: int) -> dict:
    from common_utils.models import load_model

    model = load_model("bert", profile)
    model.classifier = nn.Linear(model.config.hidden_size, num_labels)
    params = dict(model.named_parameters())
    biases = sum(p.numel() for n, p in params.items() if n.endswith(".bias") and not n.startswith("classifier."))
    head = sum(p.numel() for n, p in params.items() if n.startswith("classifier."))
    norm_weights = sum(p.numel() for n, p in params.items() if p.ndim == 1 and not n.endswith(".bias"))
    return {"biases": biases, "head": head, "head_bias": num_labels, "norm_weights": norm_weights,
            "total": sum(p.numel() for p in params.values())}


@pytest.mark.check(points=3, cell="test-count", title={"zh": "count_bitfit：可訓練參數量（grader 選的 label 數）",
                                                       "en": "count_bitfit: trainable count (labels chosen by the grader)"},
                   hint={"zh": "所有 .bias 參數加上 classifier 的全部參數（classifier.bias 只算一次）；LayerNorm 的 weight 不算。",
                         "en": "Every .bias parameter plus the whole classifier (classifier.bias once); LayerNorm weights do not count."})
def test_count_is_exact(submission, profile, rng):
    num_labels = int(torch.randint(3, 9, (1,), generator=rng))
    e = _expected_count(profile, num_labels)
    trainable = e["biases"] + e["head"]
    got_trainable, got_total = (int(v) for v in submission.nb(NB).call("count_on", num_labels))
    if (got_trainable, got_total) == (trainable, e["total"]):
        return
    numbers = say(f"預期 (可訓練, 全部) = ({trainable:,}, {e['total']:,})，實際 ({got_trainable:,}, {got_total:,})",
                  f"expected (trainable, total) = ({trainable:,}, {e['total']:,}), got ({got_trainable:,}, {got_total:,})")
    diagnoses = {
        trainable + e["norm_weights"]: ("LayerNorm 的 weight 也被算進去了：一維不等於 bias，請看名稱是否以 .bias 結尾。",
                                        "LayerNorm weights were counted too: one-dimensional is not the same as bias; match names ending in .bias."),
        e["biases"] + e["head_bias"]: ("分類頭的 weight 沒有算：新初始化的分類頭必須訓練。",
                                       "The classifier's weight is missing: a freshly initialised head must train."),
        trainable + e["head_bias"]: ("classifier.bias 算了兩次。", "classifier.bias was counted twice."),
        e["biases"]: ("分類頭整個沒算。", "The classifier head was left out."),
    }
    zh, en = diagnoses.get(got_trainable, ("請加總 .bias 參數與 classifier 參數的 numel()。",
                                           "Sum numel() over the .bias parameters and the classifier's."))
    if got_trainable == trainable:
        zh, en = "全部參數的個數不對：請加總每個參數的 numel()。", "The total is wrong: sum numel() over every parameter."
    raise Diagnosed(f"{numbers}：{say(zh, en)}" if say("zh", "en") == "zh" else f"{numbers}: {say(zh, en)}")
