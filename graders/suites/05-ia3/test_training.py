"""02-train parts 2-3: where the scaling is applied (the saved configuration) and learning on held-out rows."""
import pytest

from common_utils.peft_setup import METHODS
from graders.plugin import say
from graders.suites import peft_tester
from graders.suites.peft_tester import PeftCase

NB = "02-train"
ADAPTER = "artifacts/ia3-adapter"
IA3 = PeftCase(family="llama", method="ia3", notebook=NB, adapter=ADAPTER)
# The course's IA3 placement (the paper's keys, values and FFN input), stored once in common_utils.
TARGETS, FEEDFORWARD = (set(METHODS["ia3"][1][key]) for key in ("target_modules", "feedforward_modules"))


def _names(value) -> set:
    return set(value) if isinstance(value, list) else {value} if isinstance(value, str) else set()


@pytest.mark.check(points=2, cell="test-train-ia3", title={"zh": "縮放放在 keys、values 與 feed-forward 的輸入", "en": "scaling on keys, values and the feed-forward input"},
                   hint={"zh": "IA3Config(target_modules=[k_proj, v_proj, down_proj], feedforward_modules=[down_proj], task_type=CAUSAL_LM)。",
                         "en": "IA3Config(target_modules=[k_proj, v_proj, down_proj], feedforward_modules=[down_proj], task_type=CAUSAL_LM)."})
def test_config_places_scaling(submission, grader_tmp):
    got = peft_tester.saved_json(submission.nb(NB).artifact_path(ADAPTER), "adapter_config.json", grader_tmp)
    method = got.get("peft_type")
    assert method == "IA3", say(f"adapter 的方法是 {method!r}，不是 IA3：請用 peft 的 IA3Config。",
                                f"The adapter's method is {method!r}, not IA3: use peft's IA3Config.")
    diffs = []
    if got.get("task_type") != "CAUSAL_LM":
        diffs.append(say(f"task_type={got.get('task_type')!r} 應為 'CAUSAL_LM'", f"task_type={got.get('task_type')!r}, expected 'CAUSAL_LM'"))
    targets, ff = _names(got.get("target_modules")), _names(got.get("feedforward_modules"))
    if targets != TARGETS:
        diffs.append(say(f"target_modules={sorted(targets)}，應為 {sorted(TARGETS)}（keys、values、FFN）",
                         f"target_modules={sorted(targets)}, expected {sorted(TARGETS)} (keys, values, FFN)"))
    if ff != FEEDFORWARD:
        diffs.append(say(f"feedforward_modules={sorted(ff)}，應為 {sorted(FEEDFORWARD)}：只有 down_proj 縮放輸入",
                         f"feedforward_modules={sorted(ff)}, expected {sorted(FEEDFORWARD)}: only down_proj scales its input"))
    assert not diffs, say("IA3 的設定不同：", "The IA3 configuration differs: ") + "; ".join(diffs)


@pytest.mark.check(points=3, cell="test-train-ia3", title={"zh": "adapter 在沒看過的資料上學到了", "en": "the adapter learned (held-out rows)"},
                   hint={"zh": "AdamW 只更新可訓練參數；每步 backward → step → zero_grad；存下訓練後的模型。",
                         "en": "AdamW over trainable parameters; each step backward -> step -> zero_grad; save the trained model."},
                   visibility="hidden")  # a fraction of the reference's drop: no reference in a student kit
def test_learns_held_out(submission, reference, assignment, profile, grader_tmp):
    peft_tester.require_learned(IA3, profile, submission.nb(NB).artifact_path(ADAPTER), reference.nb(NB).artifact_path(ADAPTER),
                                assignment.settings["targets"]["loss_drop_fraction"], grader_tmp)
