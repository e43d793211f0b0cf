"""Run lm-evaluation-harness on a local model folder and the course's local task; write JSON.

Started by the 40-evaluation-data suite in a subprocess of the trusted grader, with the hub and
datasets offline, so that a stray download attempt fails at once instead of hanging the grader:

    python run_lm_eval.py MODEL_DIR TASK_DIR OUT.json
"""
from __future__ import annotations

import json
import os
import sys


def main(argv: list[str]) -> int:
    model_dir, task_dir, out = argv
    for name in ("HF_HUB_OFFLINE", "HF_DATASETS_OFFLINE", "TRANSFORMERS_OFFLINE"):
        os.environ[name] = "1"
    import lm_eval
    from lm_eval.tasks import TaskManager

    # batch_size 1: no padding, so each log-likelihood is one unpadded forward pass, as students compute it.
    run = lm_eval.simple_evaluate(model="hf", model_args=f"pretrained={model_dir},dtype=float32",
                                  tasks=["course_mc"], task_manager=TaskManager(include_path=task_dir),
                                  device="cpu", batch_size=1, log_samples=True)
    metrics = run["results"]["course_mc"]
    samples = sorted(run["samples"]["course_mc"], key=lambda s: s["doc_id"])
    payload = {
        "version": lm_eval.__version__,
        "metrics": {m: metrics[f"{m},none"] for m in ("acc", "acc_norm", "acc_bytes")},
        "samples": [{"doc": s["doc"], "arguments": [list(a) for a in s["arguments"]],
                     "lls": [float(r[0][0]) for r in s["resps"]],
                     **{m: float(s[m]) for m in ("acc", "acc_norm", "acc_bytes")}} for s in samples],
    }
    with open(out, "w", encoding="utf-8") as fh:
        json.dump(payload, fh, ensure_ascii=False)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
