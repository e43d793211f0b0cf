"""02-train parts 2-3: what was saved (exactly the biases and the head), its configuration, and learning."""
import json

import pytest
import torch

from graders.plugin import say
from graders.plugin.outcomes import Diagnosed
from graders.suites.artifacts import copy_safe

from graders.suites import peft_tester

NB = "02-train"
BITFIT = "artifacts/bitfit"
CONFIG = {"method": "bitfit", "task_type": "SEQ_CLS", "base_family": "bert", "head": "classifier"}


def saved(handle, tmp):
    """The BitFit parameters a notebook saved (safetensors only)."""
    return peft_tester.saved_tensors(handle.artifact_path(BITFIT), "bitfit.safetensors", tmp)


def applied(profile: str, tensors: dict):
    """A fresh base the grader builds, with ``tensors`` copied in."""
    from common_utils.models import load_model

    return peft_tester.load_tensors_into(load_model("bert", profile).eval(), tensors)


def course_bitfit(profile: str):
    """The profile's BERT under the course's apply_bitfit (the grader's expectation)."""
    from common_utils.adapters.bitfit import apply_bitfit
    from common_utils.models import load_model

    return apply_bitfit(load_model("bert", profile))


@pytest.mark.check(points=2, cell="test-train-bitfit", title={"zh": "bitfit_config.json 是 BitFit 的設定", "en": "bitfit_config.json describes BitFit"},
                   hint={"zh": '{"method": "bitfit", "task_type": "SEQ_CLS", "base_family": "bert", "head": "classifier"}，不多不少。',
                         "en": '{"method": "bitfit", "task_type": "SEQ_CLS", "base_family": "bert", "head": "classifier"}, no more, no less.'})
def test_config_is_bitfit(submission, grader_tmp):
    folder = copy_safe(submission.nb(NB).artifact_path(BITFIT), grader_tmp / "cfg")
    path = folder / "bitfit_config.json"
    assert path.is_file(), say("artifacts/bitfit/ 沒有 bitfit_config.json。", "artifacts/bitfit/ has no bitfit_config.json.")
    got = json.loads(path.read_text())
    assert isinstance(got, dict), say("bitfit_config.json 應是一個 JSON 物件。", "bitfit_config.json should hold a JSON object.")
    diffs = [say(f"{k}={got.get(k)!r} 應為 {v!r}", f"{k}={got.get(k)!r}, expected {v!r}") for k, v in CONFIG.items() if got.get(k) != v]
    extra = sorted(set(got) - set(CONFIG))
    if extra:
        diffs.append(say(f"多了不認得的鍵 {extra}", f"unknown extra keys {extra}"))
    assert not diffs, say("設定與 BitFit 的不同：", "The configuration is not BitFit's: ") + "; ".join(diffs)


@pytest.mark.check(points=3, cell="test-train-bitfit", title={"zh": "存下的正好是所有 bias 與分類頭", "en": "exactly the biases and the head were saved"},
                   hint={"zh": "只存 requires_grad 的參數（所有 .bias 與 classifier），鍵名與 named_parameters() 相同。",
                         "en": "Save only the parameters that require grad (every .bias and the classifier), named as in named_parameters()."})
def test_saved_exactly_biases_and_head(submission, profile, grader_tmp):
    tensors = saved(submission.nb(NB), grader_tmp)
    expected = {n: p for n, p in course_bitfit(profile).named_parameters() if p.requires_grad}
    extra, missing = sorted(set(tensors) - set(expected)), sorted(set(expected) - set(tensors))
    if extra:
        raise Diagnosed(say(f"存了 {len(extra)} 個不是 bias 也不是分類頭的張量（例如 {extra[:2]}）：BitFit 只存可訓練的參數。",
                            f"{len(extra)} saved tensors are neither biases nor the head (e.g. {extra[:2]}): BitFit saves "
                            "only the trainable parameters."))
    if missing:
        raise Diagnosed(say(f"少了 {len(missing)} 個可訓練的參數（例如 {missing[:2]}）。",
                            f"{len(missing)} trainable parameters are missing (e.g. {missing[:2]})."))
    shapes = [n for n in expected if tuple(tensors[n].shape) != tuple(expected[n].shape)]
    assert not shapes, say(f"{shapes[0]} 的形狀是 {tuple(tensors[shapes[0]].shape)}，應為 {tuple(expected[shapes[0]].shape)}。",
                           f"{shapes[0]} has shape {tuple(tensors[shapes[0]].shape)}; expected {tuple(expected[shapes[0]].shape)}.")
    got, want = sum(t.numel() for t in tensors.values()), sum(p.numel() for p in expected.values())
    assert got == want, say(f"存下 {got:,} 個數值，應為 {want:,}。", f"{got:,} values saved; expected {want:,}.")


@pytest.mark.check(points=3, cell="test-train-bitfit", title={"zh": "在沒看過的句子上學到了（與參考解答相比）",
                                                              "en": "it learned (held-out rows, against the reference)"},
                   hint={"zh": "AdamW 只更新可訓練參數；每步 backward → step → zero_grad；存下訓練後的參數。",
                         "en": "AdamW over trainable parameters; each step backward -> step -> zero_grad; save the trained parameters."},
                   visibility="hidden")  # against the reference's accuracy: no reference in a student kit
def test_learns_held_out(submission, reference, assignment, profile, grader_tmp):
    from common_utils.compression import accuracy, encode
    from common_utils.datasets import load_course_dataset
    from common_utils.models import load_model
    from common_utils.training import model_device, to_device

    held = load_course_dataset("sentiment", profile, split="held_out")
    batch = encode(held, profile)

    def loss(model) -> float:
        with torch.no_grad():
            return float(model.eval()(**to_device(batch, model_device(model))).loss)

    fraction = assignment.settings["targets"]["loss_drop_fraction"]
    base_loss = loss(load_model("bert", profile))
    mine = applied(profile, saved(submission.nb(NB), grader_tmp))
    ref = applied(profile, saved(reference.nb(NB), grader_tmp))
    got, want = base_loss - loss(mine), fraction * (base_loss - loss(ref))
    assert got >= want, say(
        f"在 held-out 句子上，你的參數讓 loss 從 {base_loss:.3f} 下降 {got:.3f}（準確率 {accuracy(mine, held, profile):.2f}）；"
        f"目標至少 {want:.3f}（參考解答下降量的 {fraction}×，參考準確率 {accuracy(ref, held, profile):.2f}）。",
        f"On held-out rows your parameters lower the loss from {base_loss:.3f} by {got:.3f} (accuracy "
        f"{accuracy(mine, held, profile):.2f}); the target is at least {want:.3f} ({fraction}x the reference's drop; "
        f"reference accuracy {accuracy(ref, held, profile):.2f}).")
