"""The shared PEFT tester's recomputation and diagnosis, on the tiny Llama built in the grader."""
from __future__ import annotations

import pytest

from graders.plugin import i18n
from graders.suites.peft_tester import PeftCase, count_diagnosis, expected_trainable, frozen_base

LORA = PeftCase(family="llama", method="lora", notebook="02-train", adapter="artifacts/lora-adapter")
IA3 = PeftCase(family="llama", method="ia3", notebook="02-train", adapter="artifacts/ia3-adapter")


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


def _ia3_adapter(folder, train_steps: int):
    """An IA3 adapter on the tiny Llama, trained ``train_steps`` steps on the held-out rows themselves
    (so that it surely lowers their loss), saved in ``folder``."""
    import torch
    from peft import get_peft_model

    from common_utils.models import load_model
    from common_utils.peft_setup import make_peft_config
    from graders.suites.peft_tester import held_out_batches

    model = get_peft_model(load_model("llama"), make_peft_config("ia3"))
    optimizer = torch.optim.AdamW([p for p in model.parameters() if p.requires_grad], lr=5e-2)
    for _, batch in zip(range(train_steps), held_out_batches(IA3, "tiny") * train_steps):
        model(**batch).loss.backward()
        optimizer.step()
        optimizer.zero_grad()
    model.save_pretrained(str(folder))
    return folder



def test_require_learned_passes_the_reference_and_fails_an_adapter_that_did_not_learn(tmp_path):
    from graders.suites.peft_tester import require_learned

    trained, untrained = _ia3_adapter(tmp_path / "trained", 8), _ia3_adapter(tmp_path / "untrained", 0)
    require_learned(IA3, "tiny", trained, trained, 0.5, tmp_path / "grader")
    i18n.set_lang("en")
    try:
        with pytest.raises(AssertionError, match=r"lowers the loss from \d+\.\d+ by 0\.000; the target is at least \d"):
            require_learned(IA3, "tiny", untrained, trained, 0.5, tmp_path / "grader")
    finally:
        i18n.set_lang("zh")


def test_load_adapter_names_an_adapter_peft_cannot_read(tmp_path):
    """A prefix adapter saved with the training encoder's tensors instead of the prefix: a failed check, not an error."""
    import torch
    from peft import PrefixTuningConfig
    from safetensors.torch import save_file

    from graders.suites.peft_tester import base_model, load_adapter

    prefix = PeftCase(family="gpt2", method="prefix_tuning", notebook="02-train", adapter="artifacts/prefix-adapter")
    folder = tmp_path / "adapter"
    PrefixTuningConfig(task_type="CAUSAL_LM", num_virtual_tokens=4).save_pretrained(str(folder))
    save_file({"embedding.weight": torch.zeros(4, 64)}, str(folder / "adapter_model.safetensors"))
    i18n.set_lang("en")
    try:
        with pytest.raises(AssertionError, match="peft cannot load this adapter"):
            load_adapter(folder, base_model(prefix, "tiny"), tmp_path / "grader")
    finally:
        i18n.set_lang("zh")


def test_served_texts_diagnosis_passes_each_adapter_alone_and_names_a_server_that_never_switches():
    from graders.suites.peft_tester import served_texts_diagnosis

    alone = {"a": {"p": "A-p", "q": "A-q"}, "b": {"p": "B-p", "q": "B-q"}}
    requests = [["a", "p"], ["b", "p"], ["b", "q"]]
    assert served_texts_diagnosis(["A-p", "B-p", "B-q"], alone, requests) is None
    i18n.set_lang("en")
    try:
        assert "set_adapter" in served_texts_diagnosis(["A-p", "A-p", "A-q"], alone, requests)
        assert "[2]" in served_texts_diagnosis(["A-p", "B-p", "B-p"], alone, requests)
    finally:
        i18n.set_lang("zh")
