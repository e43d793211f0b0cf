"""Lab 1.1, parts 1-4: the student's rulers, called on models and inputs the grader draws."""
import importlib

import pytest
import torch

from graders.plugin import say
from graders.plugin.outcomes import Diagnosed

measure = importlib.import_module("graders.suites.11-peft-comparison.measure")

NB = "01-compare"
UNFREEZE = ["word_embeddings", "encoder.layer.0.", "pooler", "LayerNorm"]


def _method(rng, *, partial: bool = False) -> str:
    """A method of the table; ``partial``: one that freezes something (not full fine-tuning)."""
    from common_utils.peft_setup import COMPARED

    methods = [m for m in COMPARED if not (partial and m == "full")]
    return methods[int(torch.randint(0, len(methods), (1,), generator=rng))]


def _batches(rng, sizes: list[int], vocab: int) -> list[dict]:
    """Token batches of the given sizes, each right-padded to its own length (attention_mask 0 there)."""
    batches = []
    for size in sizes:
        seq = int(torch.randint(6, 18, (1,), generator=rng))
        ids = torch.randint(5, vocab, (size, seq), generator=rng)
        lengths = torch.randint(3, seq + 1, (size,), generator=rng)
        mask = (torch.arange(seq)[None, :] < lengths[:, None]).long()
        batches.append({"input_ids": ids * mask, "attention_mask": mask,
                        "labels": torch.randint(0, 2, (size,), generator=rng)})
    return batches


@pytest.mark.check(points=2, cell="test-measure", title={"zh": "count_trainable：grader 選的方法與解凍的參數",
                                                         "en": "count_trainable: a method and unfrozen parameters the grader picks"},
                   hint={"zh": "用 p.numel() 加總：requires_grad 的參數是可訓練的，全部參數（凍結的也算）是總數。",
                         "en": "Sum p.numel(): parameters that require grad are trainable; every parameter (frozen too) is the total."})
def test_count(submission, profile, rng):
    method = _method(rng)
    unfreeze = [u for u in UNFREEZE if bool(torch.rand(1, generator=rng) < 0.5)]
    got = tuple(submission.nb(NB).call("count_on", method, unfreeze))
    model = measure.seeded_model(method, profile)
    for name, p in model.named_parameters():
        if any(u in name for u in unfreeze):
            p.requires_grad_(True)
    want = measure.counts(model)
    if got == (want[1], want[1]) and want[0] != want[1]:
        raise Diagnosed(say(f"{method}：可訓練數等於全部參數 {want[1]:,}：是否沒有看 requires_grad？",
                            f"{method}: trainable equals all {want[1]:,} parameters: is requires_grad ignored?"))
    assert got == want, say(f"{method}（解凍 {unfreeze}）：預期 (可訓練, 全部) = ({want[0]:,}, {want[1]:,})，實際 {got}。",
                            f"{method} (unfrozen {unfreeze}): expected (trainable, total) = ({want[0]:,}, {want[1]:,}); got {got}.")


def _memory(submission, profile, rng) -> tuple[str, dict, dict]:
    """(method, the student's training_memory, the grader's) on a method and a padded batch the grader draws."""
    method = _method(rng, partial=True)  # under full fine-tuning frozen and trainable counts coincide
    model = measure.seeded_model(method, profile)
    (batch,) = _batches(rng, [int(torch.randint(2, 5, (1,), generator=rng))], model.config.vocab_size)
    got = submission.nb(NB).call("memory_on", method, batch["input_ids"], batch["attention_mask"], batch["labels"])
    return method, got, measure.training_memory(model, batch)


def _missing_fields(got) -> None:
    if not isinstance(got, dict) or set(got) != set(measure.FIELDS):
        raise Diagnosed(say(f"training_memory 應回傳鍵為 {list(measure.FIELDS)} 的 dict，實際 {sorted(got) if isinstance(got, dict) else type(got).__name__}。",
                            f"training_memory should return a dict keyed {list(measure.FIELDS)}; got "
                            f"{sorted(got) if isinstance(got, dict) else type(got).__name__}."))


@pytest.mark.check(points=2, cell="test-measure", title={"zh": "training_memory：權重、梯度與 AdamW 狀態",
                                                         "en": "training_memory: weights, gradients and AdamW state"},
                   hint={"zh": "權重是所有參數；梯度只有可訓練的參數；AdamW 每個可訓練參數兩個 fp32 數（8 bytes）。total 是四項之和。",
                         "en": "Weights are every parameter; gradients only the trainable ones; AdamW keeps two fp32 numbers "
                               "(8 bytes) per trainable parameter. total is the sum of the four."})
def test_memory_states(submission, profile, rng):
    method, got, want = _memory(submission, profile, rng)
    _missing_fields(got)
    wrong = [k for k in ("weights", "gradients", "optimizer") if got[k] != want[k]]
    if "optimizer" in wrong and got["optimizer"] == 8 * want["weights"] // 4:
        raise Diagnosed(say(f"{method}：optimizer 是 {got['optimizer']:,} bytes，算了所有參數；AdamW 只為可訓練的參數（{want['optimizer']:,} bytes）存狀態。",
                            f"{method}: optimizer is {got['optimizer']:,} bytes, counting every parameter; AdamW keeps state "
                            f"only for trainable ones ({want['optimizer']:,} bytes)."))
    if "gradients" in wrong and got["gradients"] == want["weights"]:
        raise Diagnosed(say(f"{method}：gradients 等於全部權重的大小；凍結的參數沒有梯度。",
                            f"{method}: gradients equal all the weights' bytes; frozen parameters have no gradient."))
    assert not wrong, say("；".join(f"{method} 的 {k} 是 {got[k]:,} bytes，應為 {want[k]:,}" for k in wrong) + "。",
                          "; ".join(f"{method}: {k} is {got[k]:,} bytes, expected {want[k]:,}" for k in wrong) + ".")
    assert got["total"] == sum(got[k] for k in measure.FIELDS[:-1]), say(
        "total 應是四項之和。", "total should be the sum of the four fields.")


@pytest.mark.check(points=3, cell="test-measure", title={"zh": "activation_bytes：autograd 為 backward 存下的張量",
                                                         "en": "activation_bytes: what autograd saves for backward"},
                   hint={"zh": "在 saved_tensors_hooks 裡跑一次有梯度的 forward；以 storage 為單位各算一次，模型參數的 storage 不算。",
                         "en": "Run one forward with autograd on under saved_tensors_hooks; count each storage once, and not "
                               "the model's parameter storages."})
def test_activations(submission, profile, rng):
    method, got, want = _memory(submission, profile, rng)
    _missing_fields(got)
    g, w = got["activations"], want["activations"]
    if g == 0:
        raise Diagnosed(say(f"{method}：activation 是 0 bytes：forward 時關掉了 autograd（torch.no_grad）嗎？沒有 graph 就沒有要存的張量。",
                            f"{method}: activations are 0 bytes: was autograd off (torch.no_grad) in the forward? Without a "
                            "graph nothing is saved."))
    if g > w:
        raise Diagnosed(say(f"{method}：activation {g:,} bytes，多於 {w:,}：同一個 storage 算了不只一次，或把參數也算進去了。",
                            f"{method}: activations are {g:,} bytes, more than {w:,}: a storage counted more than once, or the "
                            "parameters counted too."))
    assert g == w, say(f"{method}：activation {g:,} bytes，應為 {w:,}（每個 storage 以 nbytes() 算一次）。",
                       f"{method}: activations are {g:,} bytes; expected {w:,} (each storage once, by its nbytes()).")


@pytest.mark.check(points=3, cell="test-measure", title={"zh": "seconds_per_step：一個每步時間已知的模型",
                                                         "en": "seconds_per_step: a model whose step time is known"},
                   hint={"zh": "跳過 warmup 步；每步從 forward 量到 optimizer.step() 之後；回傳秒（不是毫秒、不是總和）。",
                         "en": "Skip the warm-up steps; time each step from the forward to after optimizer.step(); return "
                               "seconds (not milliseconds, not a total)."})
def test_seconds(submission, rng):
    forward_s = 0.02 + 0.02 * float(torch.rand(1, generator=rng))
    backward_s = 0.04 + 0.04 * float(torch.rand(1, generator=rng))
    steps = int(torch.randint(4, 7, (1,), generator=rng))
    got = submission.nb(NB).call("seconds_on", forward_s, backward_s, 2.0, steps)
    want = forward_s + backward_s
    low, high = 0.9 * want, 2.0 * want + 0.05  # sleeping may overrun on a busy machine, never underrun
    if not isinstance(got, float) or got != got:
        raise Diagnosed(say(f"seconds_per_step 應回傳一個秒數（float），實際 {got!r}。",
                            f"seconds_per_step should return a number of seconds (float); got {got!r}."))
    if got > 100 * want:
        why = say("像是毫秒：請回傳秒。", "looks like milliseconds: return seconds.")
    elif got > high:
        why = say("像是所有步的總和，或把 warmup 那步（第一步多睡 2 秒）也平均進去了。",
                  "looks like a total over the steps, or the warm-up step (whose first call sleeps 2 s more) averaged in.")
    elif got < low:
        why = say("少量了一段：backward 與 optimizer.step() 也要在計時之內。",
                  "part of the step is missing: backward and optimizer.step() belong inside the timing.")
    else:
        why = None
    assert low <= got <= high, say(
        f"每步 forward 睡 {forward_s:.3f} s、backward 睡 {backward_s:.3f} s，一步約 {want:.3f} s；你的函式回傳 {got:.4f}。{why or ''}",
        f"Each step sleeps {forward_s:.3f} s in forward and {backward_s:.3f} s in backward, about {want:.3f} s a step; "
        f"your function returned {got:.4f}. {why or ''}")


@pytest.mark.check(points=3, cell="test-measure", title={"zh": "accuracy：eval 模式、長短不一的 batch",
                                                         "en": "accuracy: eval mode, batches of different sizes"},
                   hint={"zh": "先 model.eval()（grader 交給你的模型在 train 模式）；答對的列數除以所有列數，不要平均每個 batch 的準確率。",
                         "en": "Call model.eval() first (the grader hands the model over in training mode); right rows over "
                               "all rows, not the mean of per-batch accuracies."},
                   visibility="hidden")  # how the grader makes dropout show stays out of the student kit
def test_accuracy(submission, profile, rng):
    from common_utils.peft_setup import compared_model_on_the_fence

    method = _method(rng)
    seed = int(torch.randint(0, 2**31 - 1, (1,), generator=rng))
    vocab = measure.seeded_model(method, profile).config.vocab_size
    sizes = [int(torch.randint(9, 17, (1,), generator=rng)) for _ in range(3)] + [int(torch.randint(2, 5, (1,), generator=rng))]
    batches = _batches(rng, sizes, vocab)
    results = submission.nb(NB).call("accuracy_on", method, seed, batches)
    model = compared_model_on_the_fence(method, seed, batches, profile)
    want = measure.accuracy(model, batches)
    per_batch = [measure.accuracy(model, [b]) for b in batches]
    if not isinstance(results, list) or not all(isinstance(x, float) for x in results):
        raise Diagnosed(say(f"accuracy 應回傳一個數（float），實際 {results!r}。", f"accuracy should return a number (float); got {results!r}."))
    if any(abs(x - sum(per_batch) / len(per_batch)) < 1e-6 for x in results) and any(abs(x - want) > 1e-6 for x in results):
        raise Diagnosed(say(f"{results[0]:.4f} 是各 batch 準確率的平均；batch 大小是 {sizes}，應以列數加權：{want:.4f}。",
                            f"{results[0]:.4f} is the mean of per-batch accuracies; the batches hold {sizes} rows, so weigh by "
                            f"rows: {want:.4f}."))
    wrong = [x for x in results if abs(x - want) > 1e-6]
    assert not wrong, say(
        f"{method}：三次呼叫得到 {[round(x, 4) for x in results]}，grader 在 eval 模式算出 {want:.4f}（{sum(sizes)} 列，"
        "模型交給你時在 train 模式、dropout 0.5）：是否忘了 model.eval()？",
        f"{method}: three calls gave {[round(x, 4) for x in results]}; the grader computes {want:.4f} in eval mode "
        f"({sum(sizes)} rows; the model was handed over in training mode with dropout 0.5): was model.eval() forgotten?")
