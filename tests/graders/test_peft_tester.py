"""The shared PEFT tester's recomputation and diagnosis, on the tiny Llama built in the grader."""
from __future__ import annotations

import pytest

from graders.plugin import i18n
from graders.suites.peft_tester import PeftCase, count_diagnosis, expected_trainable, frozen_base

LORA = PeftCase(family="llama", method="lora", notebook="02-train", adapter="artifacts/lora-adapter")


def test_expected_trainable_is_r_times_in_plus_out_per_module_and_layer():
    from peft import LoraConfig

    trainable, total, adapter_only = expected_trainable(LORA, "tiny", LoraConfig(r=8, target_modules=["q_proj", "v_proj"]), [])
    assert trainable == adapter_only == 2 * 2 * 8 * (64 + 64)
    assert total > trainable


def test_unfrozen_parameters_count_as_trainable():
    from peft import LoraConfig

    trainable, _, adapter_only = expected_trainable(LORA, "tiny", LoraConfig(r=4, target_modules=["q_proj"]), ["lm_head"])
    assert trainable > adapter_only


@pytest.mark.parametrize(("got", "words"), [
    ((1000, 1000), "requires_grad"),   # counted everything
    ((10, 1000), "lora_"),             # counted by name
    ((7, 1000), "numel"),              # something else
])
def test_count_diagnosis_names_the_mistake(got, words):
    i18n.set_lang("en")
    try:
        assert words in count_diagnosis(got, (100, 1000, 10))
    finally:
        i18n.set_lang("zh")


def test_count_diagnosis_passes_the_right_answer():
    assert count_diagnosis((100, 1000), (100, 1000, 10)) is None


def test_frozen_base_lists_base_parameters_left_trainable():
    from peft import LoraConfig, get_peft_model

    from common_utils.models import load_model

    model = get_peft_model(load_model("llama"), LoraConfig(r=2, target_modules=["q_proj"]))
    assert frozen_base(model) == []
    model.base_model.model.lm_head.weight.requires_grad_(True)
    assert frozen_base(model) == ["base_model.model.lm_head.weight"]
