"""The result of one check, and the messages the plugin writes itself (kept as constants)."""
from __future__ import annotations

from dataclasses import asdict, dataclass

PASSED, FAILED, ERROR, PENDING = "passed", "failed", "error", "pending"

MSG_NO_ASSERT_TEXT = {"zh": "檢查未通過。", "en": "The check did not pass."}
MSG_PENDING_GPU = {"zh": "需要 GPU：這台機器沒有，留待 GPU runner 評分（pending）。",
                   "en": "Needs a GPU: none here; left pending for a GPU runner."}
MSG_PENDING_GPUS = {"zh": "需要 {need} 張 GPU：這台機器只有 {have} 張，留待 GPU 夠多的 runner 評分（pending）。",
                    "en": "Needs {need} GPUs: this runner has {have}; left pending for a runner with enough."}
MSG_KERNEL_GONE = {"zh": "你的 notebook kernel 已經停止（當掉、逾時或超過記憶體），無法執行這項檢查。",
                   "en": "Your notebook's kernel is gone (crashed, timed out or out of memory); the check could not run."}
# zh names only the exception's type: library messages are English (a hub-connection text for a
# local folder, say) and must not leak into zh feedback; the notebook shows the full text.
MSG_STUDENT_RAISED = {"zh": "你的程式在這項檢查中拋出例外 {kind}：請在 notebook 裡執行同一個函式看完整訊息。",
                      "en": "Your code raised an exception during this check: {error}"}
MSG_GRADER_ERROR = {"zh": "評分程式無法完成這項檢查（{error}）；請通知助教。",
                    "en": "The grader could not finish this check ({error}); please tell the TA."}
MSG_MISSING_NAME = {"zh": "notebook 中找不到 `{name}`：是否刪除或改名了？",
                    "en": "`{name}` is not defined in the notebook: was it deleted or renamed?"}


@dataclass
class CheckResult:
    id: str
    title: str
    points: float
    max_points: float
    status: str
    visibility: str
    message: str
    hint: str = ""
    gpu: bool = False
    duration_s: float = 0.0
    cell: str | None = None

    def to_json(self) -> dict:
        return asdict(self)


class PartialCredit(Exception):
    """Raise in a check to award ``fraction`` of its points, with a message saying what was missing."""

    def __init__(self, fraction: float, message: str):
        if not 0.0 <= fraction <= 1.0:
            raise ValueError(f"partial credit fraction must be in [0, 1], got {fraction}")
        super().__init__(message)
        self.fraction = fraction


class Diagnosed(AssertionError):
    """A failure whose message was chosen by diagnosis (which known wrong variant the answer
    matches, what differs). It is a hint, not the check's source, so a hidden check shows it too."""
