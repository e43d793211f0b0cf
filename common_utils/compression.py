"""The measuring tape of the compression lab (assignment 30): calibration and held-out text,
perplexity, and the inputs a model's linear layers see. Notebooks and the grader use the same
functions, so a figure a student reports and the one the grader recomputes are measured alike.

    calib = calibration_ids(profile)            # (n, seq_len) token ids, the first rows of the data
    held = heldout_ids(profile)                 # disjoint: the last rows
    ppl = perplexity(model, held)
    xs = linear_inputs(model, calib)            # {"model.layers.0.self_attn.q_proj": (tokens, in), ...}
"""
from __future__ import annotations

import math

import torch

from common_utils.datasets import load_course_dataset
from common_utils.models import load_tokenizer
from common_utils.profiles import get_profile

# (sequences, tokens each): enough tokens for a full-rank Hessian of the tiny model's widest layer
# (128 inputs) under tiny; the GPTQ paper's 128 x 2048 under full.
SHAPES = {"tiny": {"calibration": (16, 64), "heldout": (16, 64)},
          "full": {"calibration": (128, 2048), "heldout": (40, 2048)}}


def _stream(profile: str, part: str) -> torch.Tensor:
    """One long token stream of the instruction data: the first half for calibration, the last
    half held out, so the two never share a row."""
    rows = load_course_dataset("instructions", profile, limit=None if profile == "tiny" else 20000)
    half = len(rows) // 2
    chosen = rows[:half] if part == "calibration" else rows[half:]
    tok = load_tokenizer(profile)
    texts = [f"{r['instruction']}\n{r.get('input', '')}\n{r['output']}" for r in chosen]
    # Row by row (one long string trips the tokenizer's max-length warning), joined by EOS.
    ids = tok(texts, add_special_tokens=False)["input_ids"]
    return torch.tensor([t for row in ids for t in (*row, tok.eos_token_id)])


def _chunks(profile: str | None, part: str) -> torch.Tensor:
    profile = get_profile(profile)
    n, length = SHAPES[profile][part]
    stream = _stream(profile, part)
    if stream.numel() < n * length:
        raise ValueError(f"the {part} text has {stream.numel():,} tokens; {n} x {length} are needed")
    return stream[: n * length].view(n, length)


def calibration_ids(profile: str | None = None) -> torch.Tensor:
    """Token ids (sequences, length) to calibrate GPTQ and Wanda on."""
    return _chunks(profile, "calibration")


def heldout_ids(profile: str | None = None) -> torch.Tensor:
    """Token ids (sequences, length) that calibration never sees: perplexity and held-out errors."""
    return _chunks(profile, "heldout")


@torch.no_grad()
def perplexity(model: torch.nn.Module, ids: torch.Tensor, batch_size: int = 8) -> float:
    """exp(mean next-token negative log-likelihood) over every predicted token of ``ids``."""
    model.eval()
    device = next(model.parameters()).device
    total, count = 0.0, 0
    for start in range(0, ids.shape[0], batch_size):
        batch = ids[start:start + batch_size].to(device)
        logits = model(input_ids=batch).logits[:, :-1].float()
        nll = torch.nn.functional.cross_entropy(logits.reshape(-1, logits.shape[-1]), batch[:, 1:].reshape(-1),
                                                reduction="sum")
        total, count = total + float(nll), count + batch[:, 1:].numel()
    return math.exp(total / count)


def decoder_linears(model: torch.nn.Module) -> dict[str, torch.nn.Linear]:
    """The nn.Linear layers inside the decoder blocks (attention and MLP), not the embeddings or
    the output head: what GPTQ and Wanda compress."""
    return {name: m for name, m in model.named_modules()
            if isinstance(m, torch.nn.Linear) and ".layers." in f".{name}"}


@torch.no_grad()
def linear_inputs(model: torch.nn.Module, ids: torch.Tensor, batch_size: int = 8) -> dict[str, torch.Tensor]:
    """The inputs every decoder linear layer receives on ``ids``, as (tokens, in_features) fp32."""
    seen: dict[str, list[torch.Tensor]] = {}
    hooks = [m.register_forward_pre_hook(lambda _m, args, name=name: seen.setdefault(name, []).append(
        args[0].detach().reshape(-1, args[0].shape[-1]).float().cpu())) for name, m in decoder_linears(model).items()]
    model.eval()
    device = next(model.parameters()).device
    try:
        for start in range(0, ids.shape[0], batch_size):
            model(input_ids=ids[start:start + batch_size].to(device))
    finally:
        for hook in hooks:
            hook.remove()
    return {name: torch.cat(parts) for name, parts in seen.items()}


def storage_bytes(model: torch.nn.Module, method: str) -> int:
    """Bytes the decoder linear weights take in a method's storage format (the lab's effect table):
    fp32 dense; GPTQ 4-bit codes plus an fp16 scale and a 4-bit zero per group of ``group_size``;
    NF4 codes plus an fp32 absmax per 64 values; 50% unstructured sparsity as fp16 values plus a
    bitmask; 2:4 as half the values in fp16 plus a 2-bit position each."""
    numel = sum(m.in_features * m.out_features for m in decoder_linears(model).values())
    group = 32 if get_profile() == "tiny" else 128
    formats = {
        "fp32": numel * 4,
        "gptq-4bit": numel // 2 + (numel // group) * (2 + 0.5),
        "nf4": numel // 2 + (numel // 64) * 4,
        "magnitude": numel // 2 * 2 + numel // 8,
        "wanda": numel // 2 * 2 + numel // 8,
        "wanda-2of4": numel // 2 * 2 + numel // 2 // 4,
    }
    if method not in formats:
        raise ValueError(f"unknown storage format {method!r}; valid: {', '.join(formats)}")
    return int(formats[method])


def sentiment_split(profile: str | None = None) -> tuple[list[dict], list[dict]]:
    """(train, held-out) rows of the sentiment data: every fifth row is held out."""
    rows = load_course_dataset("sentiment", profile, limit=None if get_profile(profile) == "tiny" else 20000)
    return [r for i, r in enumerate(rows) if i % 5], [r for i, r in enumerate(rows) if not i % 5]


def encode(rows: list[dict], profile: str | None = None) -> dict[str, torch.Tensor]:
    """Padded input_ids, attention_mask and labels of sentiment rows (``text`` / ``sentence``, ``label``)."""
    tok = load_tokenizer(profile, family="bert")
    batch = tok([r.get("text", r.get("sentence")) for r in rows], padding=True, truncation=True, max_length=64,
                return_tensors="pt")
    return {"input_ids": batch["input_ids"], "attention_mask": batch["attention_mask"],
            "labels": torch.tensor([int(r["label"]) for r in rows])}


@torch.no_grad()
def accuracy(model: torch.nn.Module, rows: list[dict], profile: str | None = None) -> float:
    """Fraction of ``rows`` a sequence classifier labels right."""
    model.eval()
    batch = encode(rows, profile)
    device = next(model.parameters()).device
    logits = model(input_ids=batch["input_ids"].to(device), attention_mask=batch["attention_mask"].to(device)).logits
    return float((logits.argmax(-1).cpu() == batch["labels"]).float().mean())


def loaded_bytes(model: torch.nn.Module) -> int:
    """Bytes of the parameters and buffers a model holds as loaded (a bitsandbytes 4-bit weight
    counts its packed bytes): what the weights cost in memory, not what a forward pass adds."""
    tensors = [*model.parameters(), *model.buffers()]
    return sum(t.numel() * t.element_size() for t in tensors)
