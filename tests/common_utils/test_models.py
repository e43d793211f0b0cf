"""The model zoo: deterministic tiny models, the shipped tokenizer, quantized loading, errors."""
from __future__ import annotations

import pytest
import torch

from common_utils.models import FAMILIES, get_model_spec, load_model, load_tokenizer, tiny_config
from common_utils.profiles import get_profile


@pytest.mark.parametrize("family", sorted(FAMILIES))
def test_tiny_models_are_bitwise_deterministic_and_leave_the_rng_alone(family):
    torch.manual_seed(7)
    before = torch.rand(1)
    torch.manual_seed(7)
    a = load_model(family).state_dict()
    after = torch.rand(1)
    b = load_model(family).state_dict()
    assert torch.equal(before, after), "loading a tiny model must not consume the caller's random numbers"
    assert a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)


def test_tiny_llama_size_follows_its_config():
    config = tiny_config("llama")
    assert (config.hidden_size, config.num_hidden_layers, config.intermediate_size) == (64, 2, 128)
    assert config.vocab_size == len(load_tokenizer())


def test_full_profile_names_hub_checkpoints_without_loading_them():
    for family in FAMILIES:
        spec = get_model_spec(family, "full")
        assert spec.hub_id and spec.revision


def test_tokenizer_round_trips_chinese_and_english_and_has_special_tokens():
    tok = load_tokenizer()
    for text in ("把單字翻成英文：貓 → cat", "What is the capital of France?", "注意力機制 attention 😀"):
        assert tok.decode(tok(text)["input_ids"]) == text
    assert {tok.pad_token, tok.bos_token, tok.eos_token} == {"<pad>", "<s>", "</s>"}
    chat = tok.apply_chat_template([{"role": "user", "content": "嗨"}], tokenize=False, add_generation_prompt=True)
    assert chat == "<|im_start|>user\n嗨<|im_end|>\n<|im_start|>assistant\n"


def test_shipped_tokenizer_is_what_the_script_builds(tmp_path, monkeypatch):
    import importlib.util

    spec = importlib.util.spec_from_file_location("train_tokenizer", "scripts/train_tokenizer.py")
    script = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(script)
    rebuilt = script.main(tmp_path)
    for name in ("tokenizer.json", "tokenizer_config.json", "chat_template.jinja"):
        assert (rebuilt / name).read_bytes() == (script.DATA / "tokenizer" / name).read_bytes(), \
            f"{name} differs from a fresh build: run scripts/train_tokenizer.py and commit the result"


@pytest.mark.parametrize("call, message", [
    (lambda: load_model("mistral"), "unknown model family 'mistral'; valid families: llama, bert, gpt2, t5"),
    (lambda: load_model("llama", "huge"), "unknown profile 'huge'.*valid profiles: tiny, full"),
    (lambda: load_model("llama", quantization="int4"), "unknown quantization 'int4'; valid modes: none, int8, fp4, nf4"),
])
def test_bad_choices_name_the_valid_options(call, message):
    with pytest.raises(ValueError, match=message):
        call()


def test_profile_comes_from_the_environment(monkeypatch):
    monkeypatch.setenv("COURSE_PROFILE", "full")
    assert get_profile() == "full"
    monkeypatch.setenv("COURSE_PROFILE", "tiny")
    assert get_profile() == "tiny" and get_profile("full") == "full"


@pytest.mark.parametrize("mode", ["nf4", "fp4", "int8"])
def test_quantized_tiny_llama_loads_and_runs(mode, tmp_path, monkeypatch):
    monkeypatch.setenv("COURSE_CACHE", str(tmp_path))
    model = load_model("llama", quantization=mode)
    kinds = {type(m).__name__ for m in model.modules()}
    assert ("Linear4bit" if mode != "int8" else "Linear8bitLt") in kinds
    with torch.no_grad():
        logits = model(input_ids=torch.tensor([[1, 5, 9]])).logits
    assert logits.shape == (1, 3, len(load_tokenizer())) and torch.isfinite(logits).all()
    if mode != "int8":
        assert all(not m.support_avx512bf16_for_cpu for m in model.modules() if type(m).__name__ == "Linear4bit")
