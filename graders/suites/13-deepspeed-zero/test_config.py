"""Part 1: the DeepSpeed config and its batch-size consistency check, on numbers the grader draws."""
import pytest
import torch

from graders.channel import StudentError
from graders.plugin import say

NB = "zero"


def _draw(rng, n=4):
    return [int(v) for v in torch.randint(1, 9, (n,), generator=rng)]


@pytest.mark.check(points=1, cell="test-config", title={"zh": "train_batch_size = micro × 累積 × world", "en": "train_batch_size = micro x accumulation x world"},
                   hint={"zh": "三個 batch 欄位都要寫；world size 也要乘進去。", "en": "Write all three batch fields; multiply by the world size too."})
def test_batch_sizes_multiply(submission, rng):
    for stage in (3, 1, 2):
        micro, accumulation, world, _ = _draw(rng)
        config = submission.nb(NB).call("make_config", stage, micro, accumulation, world)
        _assert_config(config, stage, micro, accumulation, world)


@pytest.mark.check(points=1, cell="test-config", title={"zh": "bf16 開關照參數設定", "en": "bf16 switched by its argument"},
                   hint={"zh": "\"bf16\": {\"enabled\": bf16}；不要打開 fp16。", "en": "\"bf16\": {\"enabled\": bf16}; leave fp16 off."})
def test_bf16_follows_its_argument(submission, rng):
    for bf16 in (True, False):
        stage, (micro, accumulation, world, _) = int(torch.randint(1, 4, (1,), generator=rng)), _draw(rng)
        config = submission.nb(NB).call("make_config", stage, micro, accumulation, world, bf16=bf16)
        got = (config.get("bf16") or {}).get("enabled", False), (config.get("fp16") or {}).get("enabled", False)
        assert got == (bf16, False), say(
            f"make_config(..., bf16={bf16})：bf16.enabled={got[0]}、fp16.enabled={got[1]}，應為 {bf16} 與 False。",
            f"make_config(..., bf16={bf16}): bf16.enabled={got[0]}, fp16.enabled={got[1]}; expected {bf16} and False.")


def _assert_config(config: dict, stage: int, micro: int, accumulation: int, world: int) -> None:
    want = {"train_batch_size": micro * accumulation * world, "train_micro_batch_size_per_gpu": micro,
            "gradient_accumulation_steps": accumulation}
    got = {k: config.get(k) for k in want}
    assert got == want and config.get("zero_optimization", {}).get("stage") == stage, say(
        f"micro={micro}、accumulation={accumulation}、world={world}、stage={stage}：設定是 {got}、"
        f"zero_optimization={config.get('zero_optimization')}，應為 {want}、stage {stage}。",
        f"micro={micro}, accumulation={accumulation}, world={world}, stage={stage}: got {got}, "
        f"zero_optimization={config.get('zero_optimization')}; expected {want} and stage {stage}.")


@pytest.mark.check(points=3, cell="test-config", title={"zh": "不一致的設定被拒絕並說明原因", "en": "an inconsistent config is refused with the reason"},
                   hint={"zh": "一致時不 raise；不一致時 raise ValueError，訊息寫出乘積與 train_batch_size。",
                         "en": "No error when consistent; ValueError naming the product and train_batch_size otherwise."})
def test_refuses_inconsistent(submission, rng):
    micro, accumulation, world, extra = _draw(rng)
    good = {"train_batch_size": micro * accumulation * world, "train_micro_batch_size_per_gpu": micro,
            "zero_optimization": {"stage": 2}, "gradient_accumulation_steps": accumulation}
    try:
        submission.nb(NB).call("check_config", good, world)
    except StudentError as err:
        raise AssertionError(say(f"一致的設定（{micro} × {accumulation} × {world} = {good['train_batch_size']}）被拒絕：{err}",
                                 f"A consistent config ({micro} x {accumulation} x {world} = {good['train_batch_size']}) was refused: {err}"))
    bad = {**good, "train_batch_size": good["train_batch_size"] + extra}
    with pytest.raises(StudentError) as caught:
        submission.nb(NB).call("check_config", bad, world)
        raise AssertionError(say(f"train_batch_size {bad['train_batch_size']} ≠ {micro} × {accumulation} × {world}，check_config 卻沒有拒絕。",
                                 f"train_batch_size {bad['train_batch_size']} != {micro} x {accumulation} x {world}, yet check_config accepted it."))
    error = caught.value
    text = f"{getattr(error, 'evalue', '')} {error}"
    assert getattr(error, "ename", "") == "ValueError" and str(bad["train_batch_size"]) in text \
        and str(micro * accumulation * world) in text, say(
        f"拒絕時應 raise ValueError 並寫出 {bad['train_batch_size']} 與 {micro * accumulation * world}；實際：{getattr(error, 'ename', '?')}: {text.strip()}",
        f"Refuse with a ValueError naming {bad['train_batch_size']} and {micro * accumulation * world}; got {getattr(error, 'ename', '?')}: {text.strip()}")
