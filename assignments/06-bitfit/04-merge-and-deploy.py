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
# # 06-4 部署：一個 base model，多個任務（Deploy）
#
# BitFit 微調後的模型就是「同一個 base，換了 bias」：沒有額外的模組，也就沒有東西需要 merge。
# 它真正的好處在部署（論文 §1 的動機）：每個任務只存一小組 bias 向量與分類頭，記憶體裡只放 **一份** base model，
# 請求來了就把該任務的向量換進去。這個 notebook 算出每個任務要存多少 byte，並寫一個多任務的服務。

# %% nbgrader={"grade": false, "grade_id": "setup", "locked": true, "schema_version": 3, "solution": false, "task": false}
from pathlib import Path

import torch
from safetensors.torch import load_file
from torch import nn

from common_utils.models import load_model, load_tokenizer
from common_utils.profiles import get_profile

PROFILE = get_profile()
ARTIFACTS = Path("artifacts")
tokenizer = load_tokenizer(PROFILE, family="bert")

# %% nbgrader={"grade": false, "grade_id": "sizes", "locked": true, "schema_version": 3, "solution": false, "task": false}
task_state = load_file(ARTIFACTS / "bitfit" / "bitfit.safetensors")
base = load_model("bert", PROFILE).eval()
task_bytes = sum(t.numel() * t.element_size() for t in task_state.values())
base_bytes = sum(p.numel() * p.element_size() for p in base.parameters())
print(f"one task: {task_bytes:,} bytes; the base: {base_bytes:,} bytes ({100 * task_bytes / base_bytes:.2f}%)")

# %% [markdown] nbgrader={"grade": false, "grade_id": "server-md", "locked": true, "schema_version": 3, "solution": false, "task": false}
# ## 多任務服務
#
# 實作 `BitFitServer(base)`：
# - `__init__`：記住 base，並 **複製一份** base 原本的 bias 與分類頭（`classifier`）的值；
# - `add_task(name, tensors)`：登記一個任務的張量（鍵名與 `base.named_parameters()` 相同）；
#   一個任務可以只改 **部分** bias，沒給的就用 base 原本的值；
# - `activate(name)`：先把所有 bias 與分類頭 **還原成 base 原本的值**，再換上這個任務的張量（`torch.no_grad()` 下 `copy_`）；
# - `serve(requests)`：`requests` 是 `(task, text)` 的 list；回傳 logits，形狀 `(len(requests), num_labels)`，
#   **順序與 requests 相同**。同一任務的請求可以一起算（一個 batch），但每個請求的結果要和「只載入那個任務、單獨推論」一樣。
#
# tokenize 時用 padding、truncation 到 64、放到 `self.base.device`，並傳 `attention_mask`。

# %% nbgrader={"grade": false, "grade_id": "server", "locked": false, "schema_version": 3, "solution": true, "task": false}
class BitFitServer:
    def __init__(self, base: nn.Module):
        ### BEGIN SOLUTION
        self.base = base.eval()
        self.original = {n: p.detach().clone() for n, p in base.named_parameters()
                         if n.endswith(".bias") or n.split(".")[0] == "classifier"}
        self.tasks: dict[str, dict[str, torch.Tensor]] = {}
        ### END SOLUTION

    def add_task(self, name: str, tensors: dict[str, torch.Tensor]) -> None:
        ### BEGIN SOLUTION
        self.tasks[name] = tensors
        ### END SOLUTION

    def activate(self, name: str) -> None:
        ### BEGIN SOLUTION
        params = dict(self.base.named_parameters())
        with torch.no_grad():
            for n, value in self.original.items():
                params[n].copy_(value)
            for n, value in self.tasks[name].items():
                params[n].copy_(value)
        ### END SOLUTION

    def serve(self, requests: list[tuple[str, str]]) -> torch.Tensor:
        ### BEGIN SOLUTION
        out = [None] * len(requests)
        for task in dict.fromkeys(t for t, _ in requests):
            self.activate(task)
            idx = [i for i, (t, _) in enumerate(requests) if t == task]
            enc = tokenizer([requests[i][1] for i in idx], padding=True, truncation=True, max_length=64,
                            return_tensors="pt").to(self.base.device)
            with torch.no_grad():
                logits = self.base(input_ids=enc["input_ids"], attention_mask=enc["attention_mask"]).logits
            for row, i in enumerate(idx):
                out[i] = logits[row]
        return torch.stack(out)
        ### END SOLUTION


# %% nbgrader={"grade": false, "grade_id": "serve-run", "locked": true, "schema_version": 3, "solution": false, "task": false}
server = BitFitServer(base)
server.add_task("sentiment", task_state)
# A second task for the demonstration: the same vectors with the head's classes swapped.
server.add_task("sentiment-flipped", {**task_state, "classifier.weight": task_state["classifier.weight"].flip(0),
                                      "classifier.bias": task_state["classifier.bias"].flip(0)})
requests = [("sentiment", "This movie is wonderful."), ("sentiment-flipped", "This movie is wonderful."),
            ("sentiment", "這本書令人失望。")]
print(server.serve(requests).argmax(-1).tolist())

# %% nbgrader={"grade": true, "grade_id": "test-serve", "locked": true, "points": 4, "schema_version": 3, "solution": false, "task": false}
logits = server.serve(requests)
assert tuple(logits.shape) == (3, 2), "serve 應回傳 (len(requests), num_labels) 的 logits"
assert torch.allclose(logits[0], logits[1].flip(0), atol=1e-5), "flipped 任務的 logits 應是 sentiment 的反序"

# %% [markdown] nbgrader={"grade": false, "grade_id": "grader-seam-md", "locked": true, "schema_version": 3, "solution": false, "task": false}
# ## Grader seam（不用改）
#
# grader 給你的 `BitFitServer` 幾個 **它自己抽的** 任務（有的只改部分 bias）與一串請求，再和逐一載入的結果比對。

# %% nbgrader={"grade": false, "grade_id": "grader-seam", "locked": true, "schema_version": 3, "solution": false, "task": false}
def serve_requests(tasks: dict, requests: list) -> torch.Tensor:
    server = BitFitServer(load_model("bert", PROFILE).eval())
    for name, tensors in tasks.items():
        server.add_task(name, tensors)
    return server.serve([(t, text) for t, text in requests]).cpu()
