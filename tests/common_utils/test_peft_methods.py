"""Every PEFT method of the curriculum trains one step, counts its parameters, and reloads;
the course-written methods train only what they should; merging is correct and refuses 4-bit."""
from __future__ import annotations

import pytest
import torch

from common_utils.merge import merge_and_save
from common_utils.models import load_model, tiny_config
from common_utils.monitor import parameter_report
from common_utils.peft_setup import METHODS, apply_peft, make_peft_config

BATCH = {"input_ids": torch.tensor([[1, 20, 30, 40, 2]]), "labels": torch.tensor([[1, 20, 30, 40, 2]])}
PEFT_METHODS = [m for m, (kind, _) in METHODS.items() if kind != "course"]


def _one_step(model) -> None:
    trainable = [p for p in model.parameters() if p.requires_grad]
    before = [p.detach().clone() for p in trainable]
    opt = torch.optim.SGD(trainable, lr=0.5)
    model.train()
    model(**BATCH).loss.backward()
    opt.step()
    assert any(not torch.equal(b, p) for b, p in zip(before, trainable)), "no trainable parameter moved"


@pytest.mark.parametrize("method", PEFT_METHODS)
def test_peft_method_trains_and_reloads(method, tmp_path):
    from peft import PeftModel

    model = apply_peft(load_model("llama", for_training=True), method)
    assert parameter_report(model)["trainable"] > 0
    _one_step(model)
    model.save_pretrained(tmp_path)
    assert (tmp_path / "adapter_model.safetensors").is_file()
    reloaded = PeftModel.from_pretrained(load_model("llama"), tmp_path).eval()
    model.eval()
    with torch.no_grad():
        assert torch.allclose(model(input_ids=BATCH["input_ids"]).logits, reloaded(input_ids=BATCH["input_ids"]).logits, atol=1e-5)


def test_lora_trainable_count_is_r_times_in_plus_out_per_module():
    config = tiny_config("llama")
    r = 8
    model = apply_peft(load_model("llama"), "lora", r=r)
    head_dim = config.hidden_size // config.num_attention_heads
    q = r * (config.hidden_size + config.hidden_size)
    v = r * (config.hidden_size + config.num_key_value_heads * head_dim)
    assert parameter_report(model)["trainable"] == (q + v) * config.num_hidden_layers


def test_p_tuning_uses_the_prompt_encoder_and_v2_deep_prompts():
    from peft import PrefixTuningConfig, PromptEncoderConfig

    assert isinstance(make_peft_config("p_tuning"), PromptEncoderConfig)
    v2 = make_peft_config("p_tuning_v2")
    assert isinstance(v2, PrefixTuningConfig) and not v2.prefix_projection  # the paper's code's default
    assert make_peft_config("p_tuning_v2", prefix_projection=True).prefix_projection


@pytest.mark.parametrize("projection", [False, True])
def test_p_tuning_v2_counts_with_and_without_projection(projection):
    """Deep prompts: a key and a value prompt per layer; the projection adds an MLP of encoder_hidden_size."""
    config = tiny_config("bert")
    n, layers, hidden, enc = 10, config.num_hidden_layers, config.hidden_size, 64
    head = hidden * config.num_labels + config.num_labels  # peft trains the classifier head too (SEQ_CLS)
    model = apply_peft(load_model("bert"), "p_tuning_v2", task="sequence-classification", prefix_projection=projection)
    if projection:
        want = n * hidden + (hidden * enc + enc) + (enc * 2 * layers * hidden + 2 * layers * hidden)
    else:
        want = n * 2 * layers * hidden
    assert parameter_report(model)["trainable"] == want + head


def test_unknown_method_lists_all():
    with pytest.raises(ValueError, match="valid methods: lora, prompt_tuning, prefix_tuning, p_tuning, p_tuning_v2, ia3, bottleneck, bitfit"):
        make_peft_config("dora-plus")


@pytest.mark.parametrize("family, placement", [("llama", "pfeiffer"), ("llama", "houlsby"), ("bert", "houlsby")])
def test_bottleneck_adapters_start_as_identity_and_train_only_adapters(family, placement):
    base = load_model(family)
    x = torch.tensor([[1, 20, 30, 40, 2]])
    with torch.no_grad():
        want = base(input_ids=x).logits
    model = apply_peft(load_model(family), "bottleneck", placement=placement)
    with torch.no_grad():
        assert torch.allclose(model(input_ids=x).logits, want, atol=1e-6), "a fresh adapter must be the identity"
    trainable = {n for n, p in model.named_parameters() if p.requires_grad}
    assert trainable and all(".adapter." in n or n.startswith(("classifier", "score")) for n in trainable)
    per_site = 2 * 64 * 16 + 16 + 64
    sites = 2 if placement == "houlsby" else 1
    head = sum(p.numel() for n, p in model.named_parameters() if n.startswith("classifier"))
    assert parameter_report(model)["trainable"] == per_site * sites * 2 + head


@pytest.mark.parametrize("dtype", [torch.bfloat16, torch.float16])
def test_bottleneck_adapters_follow_the_wrapped_layers_dtype(dtype):
    model = apply_peft(load_model("bert").to(dtype), "bottleneck", placement="houlsby")
    adapters = [p for n, p in model.named_parameters() if ".adapter." in n]
    assert adapters and all(p.dtype == dtype and p.device.type == "cpu" for p in adapters)
    with torch.no_grad():
        assert model(input_ids=torch.tensor([[1, 20, 30, 40, 2]])).logits.dtype == dtype


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a GPU: adapters on the wrapped layer's device")
def test_bottleneck_adapters_follow_the_wrapped_layers_device():
    model = apply_peft(load_model("bert").to("cuda"), "bottleneck", placement="pfeiffer")
    assert all(p.device.type == "cuda" for n, p in model.named_parameters() if ".adapter." in n)


def test_bitfit_trains_biases_and_the_head_and_refuses_llama():
    model = apply_peft(load_model("bert"), "bitfit")
    trainable = [n for n, p in model.named_parameters() if p.requires_grad]
    assert trainable and all(n.endswith(".bias") or n.startswith("classifier") for n in trainable)
    assert "classifier.weight" in trainable
    with pytest.raises(ValueError, match="no bias parameters"):
        apply_peft(load_model("llama"), "bitfit")


def test_merge_matches_unmerged_leaves_no_lora_and_writes_safetensors(tmp_path):
    from transformers import AutoModelForCausalLM

    model = apply_peft(load_model("llama"), "lora")
    with torch.no_grad():
        for name, p in model.named_parameters():
            if "lora_B" in name:
                p.normal_(std=0.1)
    model.eval()
    with torch.no_grad():
        want = model(input_ids=BATCH["input_ids"]).logits
    out = merge_and_save(model, tmp_path / "merged")
    assert sorted(p.suffix for p in out.iterdir() if p.suffix in (".bin", ".safetensors")) == [".safetensors"]
    merged = AutoModelForCausalLM.from_pretrained(out).eval()
    assert not [n for n, _ in merged.named_parameters() if "lora" in n]
    with torch.no_grad():
        got = merged(input_ids=BATCH["input_ids"]).logits
    assert ((got - want).abs().max() / want.abs().max()).item() < 1e-5


def test_merge_refuses_a_4bit_model(tmp_path, monkeypatch):
    monkeypatch.setenv("COURSE_CACHE", str(tmp_path))
    model = apply_peft(load_model("llama", quantization="nf4"), "lora")
    with pytest.raises(ValueError, match="refusing to merge into a quantized model"):
        merge_and_save(model, tmp_path / "merged")


@pytest.mark.parametrize("method", ["full", "lora", "bottleneck", "prompt_tuning", "prefix_tuning", "p_tuning",
                                    "p_tuning_v2", "ia3", "bitfit"])
def test_compared_model_trains_its_method_and_a_head(method):
    """Lab 1.1's rows: each method on the BERT classifier, the head trainable (never a frozen random head)."""
    from common_utils.peft_setup import COMPARED, compared_model

    assert method in COMPARED
    model = compared_model(method, "tiny")
    trainable = {n for n, p in model.named_parameters() if p.requires_grad}
    total = sum(p.numel() for p in model.parameters())
    n_trainable = sum(p.numel() for n, p in model.named_parameters() if n in trainable)
    assert any("classifier" in n for n in trainable), f"{method}: the classifier head is frozen"
    assert (n_trainable == total) == (method == "full")
    if method != "full":
        assert n_trainable < total / 2
    batch = {"input_ids": torch.randint(5, 100, (3, 9)), "attention_mask": torch.ones(3, 9, dtype=torch.long),
             "labels": torch.tensor([0, 1, 1])}
    out = model(**batch)
    assert out.logits.shape == (3, 2) and out.loss.requires_grad


def test_compared_model_refuses_an_unknown_method():
    from common_utils.peft_setup import compared_model

    with pytest.raises(ValueError, match="unknown compared method"):
        compared_model("adapterdrop", "tiny")
