"""The ``full`` profile offline: the shipped architectures give the published parameter counts on
the meta device, every method's count follows its formula, random weights build and run without
the hub, revisions are pinned, and 4-bit weights count as the weights they stand for."""
from __future__ import annotations

import json
import re

import pytest
import torch

from common_utils.models import FAMILIES, build_on_meta, load_model, load_tokenizer
from common_utils.monitor import parameter_report
from common_utils.peft_setup import counts_on_meta

# Published totals of the reference checkpoints (the model cards' and peft's own printouts).
PUBLISHED = {"llama": 6_738_415_616, "bert": 109_483_778, "gpt2": 124_439_808, "t5": 60_506_624}
H, L, FF = 4096, 32, 11008  # Llama-2-7B
BERT_HEAD = 768 * 2 + 2


def formula(method: str) -> int:
    """Trainable parameters of each method on Llama-2-7B with the course defaults, by hand."""
    return {
        "lora": L * 2 * (8 * H + H * 8),  # r=8 on q_proj and v_proj: A (r x h) and B (h x r)
        "prompt_tuning": 10 * H,  # 10 virtual token embeddings
        "prefix_tuning": L * 2 * 10 * H,  # a key and a value prefix of 10 per layer
        "p_tuning_v2": L * 2 * 10 * H,  # deep prompts trained directly (prefix_projection=False)
        "p_tuning": 10 * H + (H * 64 + 64) + (64 * 64 + 64) + (64 * H + H),  # embedding + the MLP encoder
        "ia3": L * (H + H + FF),  # k, v and the feed-forward input of down_proj
        "bottleneck": L * (H * 16 + 16 + 16 * H + H),  # one pfeiffer adapter of width 16 per block
    }[method]


@pytest.mark.parametrize("family", sorted(PUBLISHED))
def test_full_architectures_have_the_published_totals(family):
    assert counts_on_meta(family, None) == {"trainable": PUBLISHED[family], "total": PUBLISHED[family]}


@pytest.mark.parametrize("method", ["lora", "prompt_tuning", "prefix_tuning", "p_tuning_v2", "p_tuning", "ia3",
                                    "bottleneck"])
def test_every_method_on_llama_7b_follows_its_formula(method):
    counts = counts_on_meta("llama", method)
    assert counts["trainable"] == formula(method)
    assert counts["total"] == PUBLISHED["llama"] + formula(method)


def test_lora_on_llama_7b_is_peft_s_printed_figure():
    # "trainable params: 4,194,304 || all params: 6,742,609,920 || trainable%: 0.0622" (peft, r=8, q/v)
    assert counts_on_meta("llama", "lora") == {"trainable": 4_194_304, "total": 6_742_609_920}


def test_bert_methods_train_the_classifier_head_too():
    assert counts_on_meta("bert", "lora", target_modules=["query", "value"])["trainable"] == 12 * 2 * 8 * 768 * 2 + BERT_HEAD
    biases = counts_on_meta("bert", "bitfit")["trainable"] - BERT_HEAD
    model = build_on_meta("bert", "full")
    assert biases == sum(p.numel() for n, p in model.named_parameters() if n.endswith(".bias")
                         and not n.startswith("classifier"))


def test_ia3_defaults_fit_every_architecture():
    from common_utils.peft_setup import ia3_targets

    assert ia3_targets("llama") == (["k_proj", "v_proj", "down_proj"], ["down_proj"])  # the paper's k, v, FFN input
    # key and value scaled at their outputs, the feed-forward scaled at its input, per layer
    # BERT: peft's "output.dense" also matches attention.output.dense (scaled at its 768 inputs)
    assert counts_on_meta("bert", "ia3")["trainable"] == 12 * (768 + 768 + 768 + 3072) + BERT_HEAD
    assert counts_on_meta("gpt2", "ia3")["trainable"] == 12 * (3 * 768 + 3072)  # c_attn holds q, k and v
    encoder, decoder = 6 * (512 + 512 + 2048), 6 * (2 * (512 + 512) + 2048)  # the decoder: self and cross attention
    assert counts_on_meta("t5", "ia3")["trainable"] == encoder + decoder


def test_the_meta_models_hold_no_memory():
    model = build_on_meta("llama", "full")
    assert {p.device.type for p in model.parameters()} == {"meta"}


def test_models_and_the_shipped_dataset_pins_are_commit_hashes():
    for family, profiles in FAMILIES.items():
        spec = profiles["full"]
        assert re.fullmatch(r"[0-9a-f]{40}", spec.revision or ""), f"{family}: {spec.revision!r} is not a commit"
        assert spec.full_config and spec.full_config["class"].endswith("Config")
    from common_utils.datasets import FULL, PINS_FILE, full_dataset

    pins = json.loads(PINS_FILE.read_text()) if PINS_FILE.is_file() else {}
    for name in FULL:
        hub = full_dataset(name)
        assert hub["revision"] is None or re.fullmatch(r"[0-9a-f]{40}", hub["revision"]), (name, hub)
        assert set(pins) <= {entry[0] for entry in FULL.values()}
    # GLUE and CNN/DailyMail cannot load without their config name.
    assert full_dataset("paraphrase")["config"] == "mrpc" and full_dataset("summaries")["config"] == "3.0.0"


def test_hub_grading_refuses_an_unpinned_dataset(monkeypatch):
    from common_utils import datasets

    monkeypatch.setenv("COURSE_WEIGHTS", "hub")
    monkeypatch.setattr(datasets, "PINS_FILE", datasets.DATA_DIR / "no-such-pins.json")
    with pytest.raises(RuntimeError, match="no pinned revision"):
        datasets.load_course_dataset("sentiment", "full")


def test_random_weights_build_the_full_architecture_offline(monkeypatch):
    monkeypatch.setenv("COURSE_WEIGHTS", "random")
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    model = load_model("gpt2", "full")
    assert parameter_report(model)["total"] == PUBLISHED["gpt2"]
    again = load_model("gpt2", "full")
    assert torch.equal(model.transformer.h[0].attn.c_attn.weight, again.transformer.h[0].attn.c_attn.weight)  # seeded
    tok = load_tokenizer("full", "gpt2")  # the shipped tokenizer: its ids lie inside GPT-2's vocabulary
    batch = tok(["hello world"], return_tensors="pt").to(model.device)  # the GPU where there is one
    assert int(batch["input_ids"].max()) < model.config.vocab_size
    with torch.no_grad():
        logits = model(**batch).logits
    assert logits.shape[-1] == 50257 and torch.isfinite(logits).all()
    from common_utils.datasets import load_course_dataset

    assert load_course_dataset("sentiment", "full", limit=3) == load_course_dataset("sentiment", "tiny", limit=3)


def test_an_unknown_weight_source_is_refused(monkeypatch):
    from common_utils.profiles import get_weights

    monkeypatch.setenv("COURSE_WEIGHTS", "hf")
    with pytest.raises(ValueError, match="valid: hub, random"):
        get_weights("full")
    assert get_weights("tiny") == "shipped"


def test_four_bit_weights_count_as_the_weights_they_stand_for():
    pytest.importorskip("bitsandbytes", reason="the 4-bit count needs bitsandbytes (the quant extra)")
    full = parameter_report(load_model("llama"))["total"]
    nf4 = load_model("llama", quantization="nf4")
    packed = sum(p.numel() for p in nf4.parameters())
    assert packed < full  # storage halves the 4-bit weights ...
    assert parameter_report(nf4)["total"] == full  # ... and the report counts them as weights, as peft does
    from peft import get_peft_model

    from common_utils.peft_setup import make_peft_config

    wrapped = get_peft_model(nf4, make_peft_config("lora"))
    report = parameter_report(wrapped)
    assert (report["trainable"], report["total"]) == wrapped.get_nb_trainable_parameters()


def test_course_models_counts_prints_the_table(capsys):
    from graders.cli.main import main

    assert main(["models", "counts", "--family", "llama", "--json"]) == 0
    rows = json.loads(capsys.readouterr().out)
    assert {r["method"]: r["trainable"] for r in rows}["lora"] == 4_194_304


def test_prefetch_asks_for_the_pinned_commits(monkeypatch, capsys):
    import huggingface_hub

    from graders.cli.main import main

    calls = []
    monkeypatch.setattr(huggingface_hub, "snapshot_download", lambda repo, **kw: calls.append((repo, kw)))
    assert main(["models", "prefetch", "--models-only"]) == 0
    assert {repo: kw["revision"] for repo, kw in calls} == {s["full"].hub_id: s["full"].revision for s in FAMILIES.values()}
    assert "offline" in capsys.readouterr().out
    # the datasets: refused while one has no pinned commit (no pins file here), naming the fix
    from common_utils import datasets

    monkeypatch.setattr(datasets, "PINS_FILE", datasets.DATA_DIR / "no-such-pins.json")
    calls.clear()
    assert main(["models", "prefetch"]) == 2 and calls == []
    assert "course models pin" in capsys.readouterr().err
