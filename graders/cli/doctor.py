"""``course doctor``: is this machine ready for the course? (the original course's check_gpu)

Each line gives a verdict: ``ok``, ``warn`` (optional, with what it costs you) or ``FAIL``
(required). The exit status is 1 when anything required fails.
"""
from __future__ import annotations

import argparse
import importlib
import platform
import shutil
import subprocess
import sys
from dataclasses import dataclass
from typing import Callable

OK, WARN, FAIL = "ok", "warn", "FAIL"


@dataclass
class Finding:
    name: str
    verdict: str
    detail: str


def _python() -> Finding:
    version = platform.python_version()
    good = sys.version_info >= (3, 10)
    return Finding("python", OK if good else FAIL, version if good else f"{version}; the course needs 3.10 or newer")


def _torch() -> Finding:
    try:
        import torch
    except ImportError as err:
        return Finding("torch", FAIL, f"not importable ({err}); run scripts/bootstrap")
    return Finding("torch", OK, torch.__version__)


def _gpu() -> Finding:
    import torch

    if not torch.cuda.is_available():
        return Finding("cuda", WARN, "no CUDA GPU: the tiny profile runs on CPU; full-profile and "
                       "throughput checks will be reported as pending")
    names = ", ".join(torch.cuda.get_device_name(i) for i in range(torch.cuda.device_count()))
    return Finding("cuda", OK, f"CUDA {torch.version.cuda}: {names}")


def _bitsandbytes() -> Finding:
    try:
        bnb = importlib.import_module("bitsandbytes")
    except Exception as err:  # bitsandbytes raises RuntimeError on broken CUDA setups too
        return Finding("bitsandbytes", WARN, f"not usable ({type(err).__name__}: {err}); "
                       "quantized (int8/nf4/fp4) loading is unavailable")
    import torch

    backend = "cuda" if torch.cuda.is_available() else "cpu"
    return Finding("bitsandbytes", OK, f"{bnb.__version__}, backend {backend}")


def _packages() -> Finding:
    missing, found = [], []
    for name in ("transformers", "peft", "datasets", "accelerate", "safetensors", "nbgrader"):
        try:
            found.append(f"{name} {importlib.import_module(name).__version__}")
        except ImportError:
            missing.append(name)
    if missing:
        return Finding("packages", FAIL, f"missing {', '.join(missing)}; run scripts/bootstrap")
    return Finding("packages", OK, "; ".join(found))


def _bubblewrap() -> Finding:
    path = shutil.which("bwrap")
    if path is None:
        return Finding("bubblewrap", WARN, "bwrap not found: `course check` runs with rlimits only; "
                       "official grading (--require-isolation) needs it (apt-get install bubblewrap)")
    probe = subprocess.run([path, "--ro-bind", "/", "/", "--unshare-net", "--unshare-pid",
                            "--dev", "/dev", "--proc", "/proc", "true"], capture_output=True, text=True)
    if probe.returncode != 0:
        return Finding("bubblewrap", WARN, f"bwrap present but refused here: {probe.stderr.strip()[:200]}")
    return Finding("bubblewrap", OK, f"{path} isolates (net, pid namespaces)")


def _kernel() -> Finding:
    from jupyter_client.manager import start_new_kernel

    try:
        km, kc = start_new_kernel(kernel_name="python3", startup_timeout=60)
    except Exception as err:
        return Finding("jupyter kernel", FAIL, f"could not start: {err}; run scripts/bootstrap")
    try:
        reply = kc.execute_interactive("assert 1 + 1 == 2", timeout=30)
        status = reply["content"]["status"]
    finally:
        kc.stop_channels()
        km.shutdown_kernel(now=True)
    return Finding("jupyter kernel", OK if status == "ok" else FAIL, f"python3 kernel started, execute: {status}")


def _course_data() -> Finding:
    try:
        from common_utils.models import load_tokenizer
        tok = load_tokenizer("tiny")
    except Exception as err:
        return Finding("course data", FAIL, f"tiny tokenizer did not load: {err}")
    return Finding("course data", OK, f"tiny tokenizer, vocab {len(tok):,}")


CHECKS: list[Callable[[], Finding]] = [_python, _torch, _packages, _gpu, _bitsandbytes, _bubblewrap,
                                       _kernel, _course_data]


def diagnose() -> list[Finding]:
    return [check() for check in CHECKS]


def add_arguments(p: argparse.ArgumentParser) -> None:
    del p  # no options: the checks are the same for everyone


def run(args: argparse.Namespace) -> int:
    findings = diagnose()
    width = max(len(f.name) for f in findings)
    for f in findings:
        print(f"[{f.verdict:>4}] {f.name:<{width}}  {f.detail}")
    failed = [f.name for f in findings if f.verdict == FAIL]
    print("doctor: " + (f"required checks failed: {', '.join(failed)}" if failed else "ready for the course"))
    return 1 if failed else 0
