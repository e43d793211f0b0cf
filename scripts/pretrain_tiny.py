"""Pretrain the course's four tiny models on the shipped corpora, so that they know something.

A randomly initialised tiny Llama answers "0" and eos to every prompt: fine-tuning then has no
visible effect and a generation check compares two degenerate outputs. This script gives each
tiny family a short, deterministic pretraining on the text of ``common_utils/data/*.jsonl`` and
ships the weights as safetensors in ``common_utils/data/pretrained/<family>.safetensors``; the
``tiny`` profile of ``common_utils.models.load_model`` loads them (same configs, same shapes).

What each family learns (plain text only, never the instruction template: teaching the
``### Instruction / ### Response`` format is the fine-tuning's job in 01-lora):
- llama, gpt2: next-token prediction on packed blocks of documents.
- bert: masked-token prediction (15% of tokens replaced by a random token; the tokenizer has no
  [MASK]); only the encoder (``bert.*``) is shipped, the pooler and classifier stay seed-initialised.
- t5: prefix LM: the encoder reads the first part of a document, the decoder writes the rest.

The held-out split of every dataset (``common_utils.datasets.HELD_OUT``) is left out, so checks on
held-out rows measure generalisation. Size budget: at most 1 MiB per family (fp32), 4 MiB in all.
Runs in about a CPU minute per family on 2 cores; bit-for-bit the same file on every run (fixed
seeds, one thread). ``manifest.json`` records each file's sha256 and the corpus' hash; a
repository test compares them, and a slow test reruns this script.

    .venv/bin/python scripts/pretrain_tiny.py              # all four
    .venv/bin/python scripts/pretrain_tiny.py llama gpt2   # some
"""
from __future__ import annotations

import argparse
import hashlib
import json
import sys
import time
from pathlib import Path

import torch

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from common_utils.datasets import DATA_DIR, load_course_dataset, split_rows  # noqa: E402
from common_utils.models import PRETRAINED_DIR, tiny_config  # noqa: E402

SEED = 20261125
BLOCK = 64  # tokens per training sequence: the corpora's documents are short
BATCH = 16
BUDGET_BYTES = 2**20  # per family
# family -> (steps, learning rate): enough to know the corpora, a minute on 2 cores.
SCHEDULE = {"llama": (500, 3e-3), "gpt2": (500, 3e-3), "bert": (500, 2e-3), "t5": (500, 3e-3)}
# dataset -> the fields of a row, in reading order, that make one plain-text document
# (preferences: the chosen answer only; a rejected answer is not something to learn).
DATASETS = {"instructions": ("instruction", "input", "output"), "paraphrase": ("sentence1", "sentence2"),
            "preferences": ("prompt", "chosen"), "sentiment": ("text",), "summaries": ("document", "summary")}


def documents() -> list[str]:
    """Plain-text documents from the training split of every shipped dataset, in a fixed order."""
    docs = []
    for name, fields in DATASETS.items():
        for row in split_rows(load_course_dataset(name, "tiny"), "train"):
            docs.append("\n".join(str(row[f]).strip() for f in fields if str(row.get(f) or "").strip()))
    return docs


def corpus_hash() -> str:
    h = hashlib.sha256()
    for name in DATASETS:
        h.update((DATA_DIR / f"{name}.jsonl").read_bytes())
    h.update((DATA_DIR / "tokenizer" / "tokenizer.json").read_bytes())
    return h.hexdigest()


def packed_blocks(tok, docs: list[str]) -> torch.Tensor:
    ids: list[int] = []
    for doc in docs:
        ids += [tok.bos_token_id] + tok(doc, add_special_tokens=False)["input_ids"] + [tok.eos_token_id]
    n = len(ids) // BLOCK
    return torch.tensor(ids[: n * BLOCK]).view(n, BLOCK)


def _batches(blocks: torch.Tensor, steps: int, gen: torch.Generator):
    order = torch.cat([torch.randperm(len(blocks), generator=gen) for _ in range(steps * BATCH // len(blocks) + 1)])
    for step in range(steps):
        yield blocks[order[step * BATCH:(step + 1) * BATCH]]


def _model(family: str):
    import transformers

    config = tiny_config(family)
    cls = {"llama": transformers.LlamaForCausalLM, "gpt2": transformers.GPT2LMHeadModel,
           "bert": transformers.BertForMaskedLM, "t5": transformers.T5ForConditionalGeneration}[family]
    torch.manual_seed(SEED)
    return cls(config)


def _loss(family: str, model, x: torch.Tensor, gen: torch.Generator, vocab: int, pad: int):
    if family in ("llama", "gpt2"):
        return model(input_ids=x, labels=x).loss
    if family == "bert":
        chosen = torch.rand(x.shape, generator=gen) < 0.15
        noisy = torch.where(chosen, torch.randint(5, vocab, x.shape, generator=gen), x)
        return model(input_ids=noisy, labels=torch.where(chosen, x, torch.full_like(x, -100))).loss
    cut = BLOCK // 2  # t5: prefix -> continuation
    return model(input_ids=x[:, :cut].contiguous(), labels=x[:, cut:].contiguous()).loss


def pretrain(family: str, out_dir: Path = PRETRAINED_DIR) -> dict:
    from safetensors.torch import save_file

    from common_utils.models import load_tokenizer

    torch.set_num_threads(1)  # bitwise-reproducible across machines with different core counts
    tok = load_tokenizer("tiny")
    blocks = packed_blocks(tok, documents())
    steps, lr = SCHEDULE[family]
    model = _model(family).train()
    gen = torch.Generator().manual_seed(SEED)
    opt = torch.optim.AdamW(model.parameters(), lr=lr, weight_decay=0.01)
    sched = torch.optim.lr_scheduler.OneCycleLR(opt, max_lr=lr, total_steps=steps, pct_start=0.1)
    start, losses = time.perf_counter(), []
    for x in _batches(blocks, steps, gen):
        loss = _loss(family, model, x, gen, len(tok), tok.pad_token_id)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        opt.step()
        sched.step()
        opt.zero_grad()
        losses.append(loss.item())
    state = {k: v.detach().contiguous() for k, v in model.state_dict().items()}
    if family == "bert":
        state = {k: v for k, v in state.items() if k.startswith("bert.")}
    if family in ("llama", "gpt2", "t5"):  # tied or shared tensors are stored once by their canonical name
        state = _untie(model, state)
    out_dir.mkdir(parents=True, exist_ok=True)
    path = out_dir / f"{family}.safetensors"
    save_file(state, path)  # no metadata: its order in the header varies between runs (manifest.json has it)
    path.chmod(0o644)  # sandboxed kernels read it under another uid
    size = path.stat().st_size
    if size > BUDGET_BYTES:
        raise SystemExit(f"{path.name} is {size:,} bytes, over the {BUDGET_BYTES:,}-byte budget")
    first, last = sum(losses[:20]) / 20, sum(losses[-20:]) / 20
    return {"file": path.name, "sha256": hashlib.sha256(path.read_bytes()).hexdigest(), "bytes": size,
            "steps": steps, "lr": lr, "blocks": len(blocks), "loss_first": round(first, 4), "loss_last": round(last, 4),
            "seconds": round(time.perf_counter() - start, 1)}


def _untie(model, state: dict) -> dict:
    """Keep one name per shared storage (safetensors refuses aliases)."""
    seen, kept = {}, {}
    for k, v in state.items():
        ptr = v.data_ptr()
        if ptr in seen:
            continue
        seen[ptr] = k
        kept[k] = v.clone()
    return kept


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("families", nargs="*", default=list(SCHEDULE), help="families to pretrain (default: all)")
    parser.add_argument("--out", type=Path, default=PRETRAINED_DIR, help="where the .safetensors and manifest go")
    args = parser.parse_args(argv)
    manifest_path = args.out / "manifest.json"
    manifest = json.loads(manifest_path.read_text()) if manifest_path.is_file() else {}
    manifest["corpus_sha256"] = corpus_hash()
    for family in args.families:
        info = pretrain(family, args.out)
        manifest.setdefault("families", {})[family] = info
        print(f"{family}: loss {info['loss_first']} -> {info['loss_last']}, {info['bytes']:,} bytes, {info['seconds']} s")
        manifest_path.write_text(json.dumps(manifest, indent=2, sort_keys=True) + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
