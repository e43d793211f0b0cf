# ---
# jupyter:
#   jupytext:
#     text_representation:
#       extension: .py
#       format_name: percent
#   kernelspec:
#     display_name: Python 3
#     language: python
#     name: python3
# ---

# %% [markdown] nbgrader={"grade": false, "grade_id": "intro", "locked": true, "schema_version": 3, "solution": false, "task": false}
# # 02-4 部署：一個 base，多組 adapter（Deploy）
#
# LoRA 的更新 $BA$ 是線性的，可以加回 $W$；bottleneck adapter 中間有非線性 $\sigma$，$h + W_{up}\sigma(W_{down}h)$
# **無法** 寫成單一矩陣，所以不能 merge，推論時多了一點延遲（Houlsby et al. 的代價，也是 LoRA 的動機之一）。
# 它的好處在部署：每個任務只存 adapter 與分類頭，記憶體裡只放一份 base，請求來了換上該任務的張量（Houlsby §1：
# 「compact and extensible」）。

# %% nbgrader={"grade": false, "grade_id": "setup", "locked": true, "schema_version": 3, "solution": false, "task": false}
import json
from pathlib import Path

import torch
from safetensors.torch import load_file
from torch import nn

from common_utils.adapters.bottleneck import BottleneckConfig, add_bottleneck_adapters
from common_utils.models import load_model, load_tokenizer
from common_utils.profiles import get_profile

PROFILE = get_profile()
ARTIFACTS = Path("artifacts")
tokenizer = load_tokenizer(PROFILE, family="bert")
settings = json.loads((ARTIFACTS / "adapters" / "adapter_config.json").read_text())
CONFIG = BottleneckConfig(bottleneck_size=settings["bottleneck_size"], placement=settings["placement"],
                          activation=settings["activation"])
task_state = load_file(ARTIFACTS / "adapters" / "adapters.safetensors")
task_bytes = sum(t.numel() * t.element_size() for t in task_state.values())
base = add_bottleneck_adapters(load_model("bert", PROFILE), CONFIG).eval()
base_bytes = sum(p.numel() * p.element_size() for p in base.parameters())
print(f"one task: {task_bytes:,} bytes; the model: {base_bytes:,} bytes ({100 * task_bytes / base_bytes:.2f}%)")

# %% [markdown] nbgrader={"grade": false, "grade_id": "server-md", "locked": true, "schema_version": 3, "solution": false, "task": false}
# ## 多任務服務
#
# 實作 `AdapterServer(model)`（`model` 已插入 adapter）：
# - `add_task(name, tensors)`：登記一個任務的 adapter 與分類頭張量（鍵名與 `model.named_parameters()` 相同）；
# - `serve(requests)`：`requests` 是 `(task, sentence1, sentence2)` 的 list；對每個任務，換上它的張量
#   （`load_state_dict(tensors, strict=False)`），把該任務的請求一起算（張量放到 `self.model.device`）；回傳 logits，形狀 `(len(requests), num_labels)`，
#   **順序與 requests 相同**，每一列都要等於「只載入那個任務、單獨推論」的結果。

# %% nbgrader={"grade": false, "grade_id": "server", "locked": false, "schema_version": 3, "solution": true, "task": false}
class AdapterServer:
    def __init__(self, model: nn.Module):
        self.model = model.eval()
        self.tasks: dict[str, dict[str, torch.Tensor]] = {}

    def add_task(self, name: str, tensors: dict[str, torch.Tensor]) -> None:
        self.tasks[name] = tensors

    def serve(self, requests: list[tuple[str, str, str]]) -> torch.Tensor:
        ### BEGIN SOLUTION
        out = [None] * len(requests)
        for task in dict.fromkeys(t for t, _, _ in requests):
            self.model.load_state_dict(self.tasks[task], strict=False)
            idx = [i for i, r in enumerate(requests) if r[0] == task]
            enc = tokenizer([requests[i][1] for i in idx], [requests[i][2] for i in idx], padding=True,
                            truncation=True, max_length=64, return_tensors="pt").to(self.model.device)
            with torch.no_grad():
                logits = self.model(input_ids=enc["input_ids"], attention_mask=enc["attention_mask"]).logits
            for row, i in enumerate(idx):
                out[i] = logits[row]
        return torch.stack(out)
        ### END SOLUTION


# %% nbgrader={"grade": false, "grade_id": "serve-run", "locked": true, "schema_version": 3, "solution": false, "task": false}
server = AdapterServer(base)
server.add_task("paraphrase", task_state)
server.add_task("paraphrase-flipped", {**task_state, "classifier.weight": task_state["classifier.weight"].flip(0),
                                       "classifier.bias": task_state["classifier.bias"].flip(0)})
requests = [("paraphrase", "This book is great.", "I think this book is great."),
            ("paraphrase-flipped", "This book is great.", "I think this book is great."),
            ("paraphrase", "這首歌令人開心。", "這首歌令人失望。")]
print(server.serve(requests).argmax(-1).tolist())

# %% nbgrader={"grade": true, "grade_id": "test-serve", "locked": true, "points": 4, "schema_version": 3, "solution": false, "task": false}
logits = server.serve(requests)
assert tuple(logits.shape) == (3, 2), "serve 應回傳 (len(requests), num_labels) 的 logits"
assert torch.allclose(logits[0], logits[1].flip(0), atol=1e-5), "flipped 任務的 logits 應是 paraphrase 的反序"

# %% [markdown] nbgrader={"grade": false, "grade_id": "grader-seam-md", "locked": true, "schema_version": 3, "solution": false, "task": false}
# ## Grader seam（不用改）

# %% nbgrader={"grade": false, "grade_id": "grader-seam", "locked": true, "schema_version": 3, "solution": false, "task": false}
def serve_requests(tasks: dict, requests: list) -> torch.Tensor:
    server = AdapterServer(add_bottleneck_adapters(load_model("bert", PROFILE), CONFIG).eval())
    for name, tensors in tasks.items():
        server.add_task(name, tensors)
    return server.serve([tuple(r) for r in requests]).cpu()
