"""The tiny models ship pretrained weights that scripts/pretrain_tiny.py makes, and know something.

Behavioural target (the tiny Llama, held-out instruction rows, greedy decoding, 16 new tokens):
after the 01-lora reference fine-tuning (LoRA r=8 on q_proj/v_proj, 120 AdamW steps at 5e-3,
batch 8, the training split), the share of answers in the instruction format (the answer ends
with eos, and is the same kind of text as the reference answer: a number, Chinese, or a Latin
word) is at least FORMAT_TARGET and at least FORMAT_GAIN above the base model's; greedy answers
to different prompts differ (at least MIN_DISTINCT distinct answers). The figures each run
reaches are printed (`pytest -s`).
"""
from __future__ import annotations

import hashlib
import importlib.util
import itertools
import json
import unicodedata

import pytest
import torch

from common_utils.models import FAMILIES, PRETRAINED_DIR, load_model, load_tokenizer

FORMAT_TARGET, FORMAT_GAIN, MIN_DISTINCT = 0.8, 0.5, 8
BUDGET_TOTAL = 4 * 2**20


def _script():
    spec = importlib.util.spec_from_file_location("pretrain_tiny", "scripts/pretrain_tiny.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _manifest() -> dict:
    return json.loads((PRETRAINED_DIR / "manifest.json").read_text())


@pytest.mark.parametrize("family", sorted(FAMILIES))
def test_shipped_weights_are_the_ones_the_manifest_records(family):
    info = _manifest()["families"][family]
    data = (PRETRAINED_DIR / info["file"]).read_bytes()
    assert hashlib.sha256(data).hexdigest() == info["sha256"], \
        f"{info['file']} differs from manifest.json: run scripts/pretrain_tiny.py {family} and commit both"


def test_manifest_was_made_from_the_shipped_corpora_and_tokenizer():
    assert _manifest()["corpus_sha256"] == _script().corpus_hash(), \
        "the corpora or the tokenizer changed since pretraining: run scripts/pretrain_tiny.py and commit the result"


def test_weights_stay_within_the_size_budget():
    sizes = {f: (PRETRAINED_DIR / f"{f}.safetensors").stat().st_size for f in FAMILIES}
    assert max(sizes.values()) <= _script().BUDGET_BYTES and sum(sizes.values()) <= BUDGET_TOTAL, sizes


@pytest.mark.parametrize("family", sorted(FAMILIES))
def test_tiny_profile_loads_the_pretrained_weights(family):
    from safetensors.torch import load_file

    state = load_model(family).state_dict()
    shipped = load_file(PRETRAINED_DIR / f"{family}.safetensors")
    assert all(torch.equal(state[k], v) for k, v in shipped.items())


@pytest.mark.slow
def test_the_script_rebuilds_the_llama_weights_bit_for_bit(tmp_path):
    info = _script().pretrain("llama", tmp_path)
    assert info["sha256"] == _manifest()["families"]["llama"]["sha256"]


def _kind(text: str) -> str:
    text = text.strip()
    if not text:
        return "empty"
    if text.lstrip("-").isdigit():
        return "number"
    if all("CJK" in unicodedata.name(c, "") or c in "，。" for c in text):
        return "chinese"
    return "latin" if text.isascii() and "\n" not in text else "other"


def _answers(model, tok, rows):
    from common_utils.instruct import format_prompt

    out = []
    for row in rows:
        ids = tok(format_prompt(row)[0], return_tensors="pt")
        with torch.no_grad():
            new = model.generate(**ids, max_new_tokens=16, do_sample=False, pad_token_id=tok.pad_token_id)[0, ids["input_ids"].shape[1]:]
        out.append((tok.eos_token_id in new.tolist(), tok.decode(new, skip_special_tokens=True)))
    return out


def _in_format(answers, rows) -> float:
    return sum(eos and _kind(text) == _kind(row["output"]) for (eos, text), row in zip(answers, rows)) / len(rows)


def _reference_finetune(tok):
    """02-train's reference run under tiny (same data order, config and schedule)."""
    from peft import LoraConfig, get_peft_model
    from torch.utils.data import DataLoader

    from common_utils.datasets import load_course_dataset
    from common_utils.instruct import InstructionDataCollator, InstructionDataset

    ds = InstructionDataset(load_course_dataset("instructions", split="train"), tok, max_length=128)
    loader = DataLoader(ds, batch_size=8, shuffle=True, collate_fn=InstructionDataCollator(tok, pad_to_multiple_of=8),
                        generator=torch.Generator().manual_seed(0))
    torch.manual_seed(0)
    model = get_peft_model(load_model("llama", for_training=True),
                           LoraConfig(r=8, lora_alpha=16, lora_dropout=0.05, target_modules=["q_proj", "v_proj"],
                                      task_type="CAUSAL_LM"))
    opt = torch.optim.AdamW([p for p in model.parameters() if p.requires_grad], lr=5e-3)
    for batch in itertools.islice(itertools.cycle(loader), 120):
        model(**batch).loss.backward()
        opt.step()
        opt.zero_grad()
    return model.eval()


@pytest.mark.slow
def test_fine_tuned_tiny_llama_follows_the_instruction_format_on_held_out_rows():
    from common_utils.datasets import load_course_dataset

    tok = load_tokenizer()
    rows = load_course_dataset("instructions", split="held_out")
    base = _answers(load_model("llama").eval(), tok, rows)
    tuned = _answers(_reference_finetune(tok), tok, rows)
    before, after = _in_format(base, rows), _in_format(tuned, rows)
    exact = sum(t.strip() == r["output"].strip() for (_, t), r in zip(tuned, rows)) / len(rows)
    distinct = len({t for _, t in tuned})
    print(f"\nheld-out format: base {before:.2f} -> tuned {after:.2f}; exact match {exact:.2f}; "
          f"{distinct} distinct answers of {len(rows)}")
    assert after >= FORMAT_TARGET and after - before >= FORMAT_GAIN
    assert distinct >= MIN_DISTINCT
