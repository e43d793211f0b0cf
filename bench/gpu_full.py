"""LoRA and QLoRA training on the ``full`` Llama architecture (Llama-2-7B shape) on one GPU.

Weights are random (COURSE_WEIGHTS=random: nothing is downloaded), which changes nothing that is
measured here: the arithmetic, the memory and the kernels are those of the real checkpoint. Each
variant trains ``STEPS`` timed steps after ``WARMUP`` untimed ones on batches of ``BATCH`` rows of
``SEQ`` tokens, and reports tokens/s, seconds per step and the CUDA peak memory of that variant
alone (the allocator's peak is reset between variants, and each variant's model is freed).

    COURSE_PROFILE=full COURSE_WEIGHTS=random python -m bench gpu_full
    BENCH_GPU="lora:4:512,qlora:4:512" ...     # variant:batch:sequence length
"""
from __future__ import annotations

import gc
import os
import time

WARMUP, STEPS = 3, 10


def _variants() -> list[tuple[str, int, int]]:
    spec = os.environ.get("BENCH_GPU", "lora:4:512,qlora:4:512,qlora-gc:4:512")
    out = []
    for item in spec.split(","):
        name, batch, seq = item.split(":")
        out.append((name, int(batch), int(seq)))
    return out


def _model(name: str):
    import torch
    from peft import get_peft_model, prepare_model_for_kbit_training

    from common_utils.models import load_model
    from common_utils.peft_setup import make_peft_config

    if name == "lora":
        base = load_model("llama", "full", for_training=True)
    else:
        base = prepare_model_for_kbit_training(load_model("llama", "full", quantization="nf4", for_training=True),
                                               use_gradient_checkpointing=name.endswith("-gc"))
    model = get_peft_model(base, make_peft_config("lora", lora_dropout=0.0))
    model.train()
    return model, torch.optim.AdamW([p for p in model.parameters() if p.requires_grad], lr=1e-4)


def _measure(name: str, batch: int, seq: int) -> dict:
    import torch

    from common_utils.monitor import parameter_report

    torch.cuda.empty_cache()
    torch.cuda.reset_peak_memory_stats()
    loaded = time.perf_counter()
    model, optimizer = _model(name)
    load_s = time.perf_counter() - loaded
    generator = torch.Generator(device="cuda").manual_seed(0)
    vocab = model.config.vocab_size
    times = []
    for step in range(WARMUP + STEPS):
        ids = torch.randint(0, vocab, (batch, seq), device="cuda", generator=generator)
        torch.cuda.synchronize()
        started = time.perf_counter()
        loss = model(input_ids=ids, labels=ids).loss
        loss.backward()
        optimizer.step()
        optimizer.zero_grad(set_to_none=True)
        torch.cuda.synchronize()
        if step >= WARMUP:
            times.append(time.perf_counter() - started)
    times.sort()
    median = times[len(times) // 2]
    report = parameter_report(model)
    figures = {"variant": name, "batch": batch, "seq": seq, "load_s": round(load_s, 1),
               "step_s_median": round(median, 4), "tokens_per_s": round(batch * seq / median),
               "peak_gib": round(torch.cuda.max_memory_allocated() / 2**30, 2),
               "trainable": report["trainable"], "total": report["total"], "loss_finite": bool(torch.isfinite(loss))}
    del model, optimizer, loss
    gc.collect()
    torch.cuda.empty_cache()
    return figures


def run() -> dict:
    import torch

    if not torch.cuda.is_available():
        return {"status": "pending", "why": "no CUDA GPU on this machine; run it on a GPU runner"}
    os.environ.setdefault("COURSE_PROFILE", "full")
    os.environ.setdefault("COURSE_WEIGHTS", "random")
    results = []
    for name, batch, seq in _variants():
        results.append(_measure(name, batch, seq))
        print(results[-1], flush=True)
    return {"gpu": torch.cuda.get_device_name(0), "weights": os.environ["COURSE_WEIGHTS"], "steps": STEPS,
            "variants": results}
