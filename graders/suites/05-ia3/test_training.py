"""02-train parts 2-3: where the scaling is applied (the saved adapter, placed by peft on the grader's
base) and learning on held-out rows."""
from collections import Counter

import pytest

from common_utils.peft_setup import ia3_targets
from graders.plugin import say
from graders.suites import peft_tester
from graders.suites.peft_tester import PeftCase, base_model, load_adapter

NB = "02-train"
ADAPTER = "artifacts/ia3-adapter"
IA3 = PeftCase(family="llama", method="ia3", notebook=NB, adapter=ADAPTER)
# The course's IA3 placement (the paper's keys, values and FFN input), stored once in common_utils.
TARGETS, FEEDFORWARD = (set(names) for names in ia3_targets("llama"))


def _placement(model) -> tuple[Counter, Counter]:
    """How many IA3 layers scale their output, and how many their input, per module name (k_proj, ...)."""
    from peft.tuners.ia3 import IA3Layer

    scaled_output, scaled_input = Counter(), Counter()
    for name, module in model.named_modules():
        if isinstance(module, IA3Layer):
            (scaled_input if module.is_feedforward else scaled_output)[name.rsplit(".", 1)[-1]] += 1
    return scaled_output, scaled_input


@pytest.mark.check(points=2, cell="test-train-ia3", title={"zh": "縮放放在 keys、values 與 feed-forward 的輸入", "en": "scaling on keys, values and the feed-forward input"},
                   hint={"zh": "IA3Config(target_modules=[k_proj, v_proj, down_proj], feedforward_modules=[down_proj], task_type=CAUSAL_LM)。",
                         "en": "IA3Config(target_modules=[k_proj, v_proj, down_proj], feedforward_modules=[down_proj], task_type=CAUSAL_LM)."})
def test_config_places_scaling(submission, profile, grader_tmp):
    folder = submission.nb(NB).artifact_path(ADAPTER)
    got = peft_tester.saved_json(folder, "adapter_config.json", grader_tmp)
    method = got.get("peft_type")
    assert method == "IA3", say(f"adapter 的方法是 {method!r}，不是 IA3：請用 peft 的 IA3Config。",
                                f"The adapter's method is {method!r}, not IA3: use peft's IA3Config.")
    assert got.get("task_type") == "CAUSAL_LM", say(f"task_type={got.get('task_type')!r}，應為 'CAUSAL_LM'。",
                                                    f"task_type={got.get('task_type')!r}, expected 'CAUSAL_LM'.")
    # Placed by peft on the grader's base: names, lists and regular expressions are judged alike.
    model = load_adapter(folder, base_model(IA3, profile), grader_tmp)
    layers = model.get_base_model().config.num_hidden_layers
    scaled_output, scaled_input = _placement(model)
    want_output = Counter({name: layers for name in TARGETS - FEEDFORWARD})
    want_input = Counter({name: layers for name in FEEDFORWARD})
    diffs = []
    if scaled_output != want_output:
        diffs.append(say(f"縮放輸出的層 {dict(sorted(scaled_output.items()))}，應為 {dict(sorted(want_output.items()))}（keys、values，每層一個）",
                         f"layers scaling their output {dict(sorted(scaled_output.items()))}, expected "
                         f"{dict(sorted(want_output.items()))} (keys and values, one per layer)"))
    if scaled_input != want_input:
        diffs.append(say(f"縮放輸入的層 {dict(sorted(scaled_input.items()))}，應為 {dict(sorted(want_input.items()))}（FFN 的中間 activation：feedforward_modules）",
                         f"layers scaling their input {dict(sorted(scaled_input.items()))}, expected "
                         f"{dict(sorted(want_input.items()))} (the FFN's intermediate activation: feedforward_modules)"))
    assert not diffs, say("IA3 放的位置不同：", "IA3 is placed differently: ") + say("；", "; ").join(diffs)


@pytest.mark.check(points=3, cell="test-train-ia3", title={"zh": "adapter 在沒看過的資料上學到了", "en": "the adapter learned (held-out rows)"},
                   hint={"zh": "AdamW 只更新可訓練參數；每步 backward → step → zero_grad；存下訓練後的模型。",
                         "en": "AdamW over trainable parameters; each step backward -> step -> zero_grad; save the trained model."},
                   visibility="hidden")  # a fraction of the reference's drop: no reference in a student kit
def test_learns_held_out(submission, reference, assignment, profile, grader_tmp):
    peft_tester.require_learned(IA3, profile, submission.nb(NB).artifact_path(ADAPTER), reference.nb(NB).artifact_path(ADAPTER),
                                assignment.settings["targets"]["loss_drop_fraction"], grader_tmp)
