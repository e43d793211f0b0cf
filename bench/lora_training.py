"""The reference LoRA / QLoRA training of 01-lora on this machine's profile.

Executes solutions/01-lora/02-train.ipynb with nbclient in a scratch folder and reports what it
measured itself: training tokens/s and samples/s (full-precision LoRA), process memory, QLoRA's
loss curve end points, and the notebook's wall time. On a GPU runner with COURSE_PROFILE=full
the same notebook reports CUDA peak memory.
"""
from __future__ import annotations

import json
import os
import tempfile
import time
from pathlib import Path

import nbformat

from graders import paths


def run() -> dict:
    from nbclient import NotebookClient

    nb = nbformat.read(paths.SOLUTIONS / "01-lora" / "02-train.ipynb", as_version=4)
    with tempfile.TemporaryDirectory() as tmp:
        start = time.perf_counter()
        NotebookClient(nb, timeout=1800, kernel_name="python3", resources={"metadata": {"path": tmp}}).execute()
        wall = time.perf_counter() - start
        metrics = json.loads((Path(tmp) / "artifacts" / "train_metrics.json").read_text())
        qlora = json.loads((Path(tmp) / "artifacts" / "qlora_metrics.json").read_text())
    return {
        "profile": os.environ.get("COURSE_PROFILE", "tiny"),
        "notebook_wall_s": round(wall, 1),
        "lora": {k: metrics.get(k) for k in ("tokens_per_s", "samples_per_s", "n_trainable", "n_total")},
        "lora_loss_first_last": [round(metrics["losses"][0], 3), round(metrics["losses"][-1], 3)],
        "lora_memory": metrics.get("memory"),
        "qlora_loss_first_last": [round(qlora["losses"][0], 3), round(qlora["losses"][-1], 3)],
        "qlora_memory": qlora.get("memory"),
    }
