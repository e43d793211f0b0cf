"""Fixtures of the 40-evaluation-data suite: the grader's own model and its lm-evaluation-harness run.

lm-eval runs in a subprocess (run_lm_eval.py) with the hub offline and a time limit, on the
profile's Llama saved into a temporary folder and the task shipped in common_utils/data/eval/.
Its result is cached on disk under a key of everything it read (weights, tokenizer, task files,
lm-eval's version), so a batch runs it once; a changed model (e.g. pretrained tiny weights)
changes the key.
"""
from __future__ import annotations

import hashlib
import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path

import pytest


RUNNER = Path(__file__).resolve().parent / "run_lm_eval.py"


_memo: dict = {}  # per grader process: the model and lm-eval's result, keyed by profile


@pytest.fixture
def grader_model(profile):
    from common_utils.models import load_model

    if ("model", profile) not in _memo:
        _memo["model", profile] = load_model("llama", profile).eval()
    return _memo["model", profile]


def _digest(folders: list[Path], extra: str) -> str:
    h = hashlib.sha256(extra.encode())
    for folder in folders:
        for path in sorted(p for p in folder.rglob("*") if p.is_file() and "__pycache__" not in p.parts):
            h.update(path.name.encode())
            h.update(path.read_bytes())
    return h.hexdigest()[:24]


def run_lm_eval(profile: str, timeout_s: float) -> dict:
    """lm-evaluation-harness's scores and per-question log-likelihoods on the course task."""
    from importlib.metadata import version

    from common_utils.datasets import EVAL_DIR, EVAL_TASK_DIR
    from common_utils.models import load_model, load_tokenizer

    with tempfile.TemporaryDirectory(prefix="grader-lm-eval-") as tmp:
        model_dir = Path(tmp) / "model"
        load_model("llama", profile).save_pretrained(model_dir, safe_serialization=True)
        load_tokenizer(profile).save_pretrained(model_dir)
        key = _digest([model_dir, EVAL_DIR], f"{profile}:{version('lm_eval')}")
        cache = Path(os.environ.get("COURSE_CACHE", Path.home() / ".cache" / "llm-one-piece")) / f"lm-eval-{key}.json"
        if cache.is_file():
            return json.loads(cache.read_text(encoding="utf-8"))
        out = Path(tmp) / "out.json"
        env = {**os.environ, "HF_HUB_OFFLINE": "1", "HF_DATASETS_OFFLINE": "1", "TRANSFORMERS_OFFLINE": "1",
               "HF_HUB_DISABLE_TELEMETRY": "1", "HF_DATASETS_CACHE": str(Path(tmp) / "datasets")}
        try:
            done = subprocess.run([sys.executable, str(RUNNER), str(model_dir), str(EVAL_TASK_DIR), str(out)], cwd=tmp,
                                  env=env, capture_output=True, text=True, timeout=timeout_s)
        except subprocess.TimeoutExpired:
            pytest.fail(f"lm-evaluation-harness did not finish in {timeout_s:.0f} s (grader problem, not the student's)",
                        pytrace=False)
        if done.returncode != 0 or not out.is_file():
            pytest.fail(f"lm-evaluation-harness failed in the grader (exit {done.returncode}): {done.stderr[-1500:]}",
                        pytrace=False)
        cache.parent.mkdir(parents=True, exist_ok=True)
        tmp_cache = cache.with_name(cache.name + f".tmp{os.getpid()}")
        tmp_cache.write_text(out.read_text(encoding="utf-8"), encoding="utf-8")
        tmp_cache.replace(cache)
        return json.loads(cache.read_text(encoding="utf-8"))


@pytest.fixture
def lm_eval_result(profile, assignment):
    if ("lm-eval", profile) not in _memo:
        _memo["lm-eval", profile] = run_lm_eval(profile, assignment.settings["targets"]["lm_eval_timeout_s"])
    return _memo["lm-eval", profile]
