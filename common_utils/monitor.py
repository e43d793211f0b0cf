"""What a training run costs: parameters, memory, throughput."""
from __future__ import annotations

import time

import torch


def parameter_count(param: torch.nn.Parameter) -> int:
    """How many parameters a tensor holds. A bitsandbytes 4-bit weight stores two values per byte
    of its storage dtype, so its ``numel()`` is a fraction of the layer's weights; it is counted as
    the weights it stands for, as peft's own report does (a 7B nf4 model has ~6.7 B parameters,
    not ~3.5 B)."""
    if type(param).__name__ == "Params4bit":
        storage = getattr(param, "quant_storage", None) or torch.uint8
        return param.numel() * 2 * storage.itemsize
    return param.numel()


def parameter_report(model: torch.nn.Module) -> dict:
    """Trainable and total parameter counts, computed (never quoted); 4-bit weights count as the
    weights they stand for."""
    trainable = sum(parameter_count(p) for p in model.parameters() if p.requires_grad)
    total = sum(parameter_count(p) for p in model.parameters())
    return {"trainable": trainable, "total": total, "percent": 100.0 * trainable / total if total else 0.0,
            "text": f"trainable params: {trainable:,} || all params: {total:,} || trainable%: "
                    f"{100.0 * trainable / total if total else 0.0:.4f}"}


def memory_report() -> dict:
    """Process RSS, and CUDA allocated / reserved / peak (MiB) when a GPU is present."""
    import psutil

    report = {"rss_mib": round(psutil.Process().memory_info().rss / 2**20, 1)}
    if torch.cuda.is_available():
        report.update(cuda_allocated_mib=round(torch.cuda.memory_allocated() / 2**20, 1),
                      cuda_reserved_mib=round(torch.cuda.memory_reserved() / 2**20, 1),
                      cuda_peak_mib=round(torch.cuda.max_memory_allocated() / 2**20, 1),
                      device=torch.cuda.get_device_name(0))
    return report


class ThroughputMeter:
    """Tokens/s and samples/s of the steps after ``warmup_steps``.

        meter = ThroughputMeter(warmup_steps=2)
        for batch in batches:
            with meter:                      # or: meter.start(); ...; meter.stop()
                train_step(batch)
            meter.step(tokens=n_tokens, samples=n_samples)
        meter.report()
    """

    def __init__(self, warmup_steps: int = 1):
        self.warmup_steps = warmup_steps
        self.steps = 0
        self.tokens = 0
        self.samples = 0
        self.seconds = 0.0
        self._started: float | None = None
        self._last = 0.0

    def _sync(self) -> None:
        if torch.cuda.is_available():
            torch.cuda.synchronize()  # GPU work is asynchronous: time it when it is done

    def __enter__(self) -> "ThroughputMeter":
        self._sync()
        self._started = time.perf_counter()
        return self

    def __exit__(self, *exc) -> None:
        self._sync()
        self._last = time.perf_counter() - (self._started or time.perf_counter())
        self._started = None

    def step(self, tokens: int, samples: int) -> None:
        self.steps += 1
        if self.steps > self.warmup_steps:
            self.tokens += tokens
            self.samples += samples
            self.seconds += self._last

    def report(self) -> dict:
        s = self.seconds or float("nan")
        return {"tokens_per_s": round(self.tokens / s, 1) if self.seconds else None,
                "samples_per_s": round(self.samples / s, 2) if self.seconds else None,
                "measured_steps": max(0, self.steps - self.warmup_steps), "seconds": round(self.seconds, 3)}
