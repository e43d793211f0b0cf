"""What each flag means for the student, in both languages; the flag's own detail (the engine's
record, in English) follows it in the feedback."""
from __future__ import annotations

FLAG_TEXT = {
    "malformed_notebook": ("notebook 無法讀取（不是有效的 JSON 或 nbformat）。", "The notebook could not be read (not valid JSON or nbformat)."),
    "missing_notebook": ("缺少這份 notebook。", "This notebook is missing."),
    "extra_notebook": ("多出一份不屬於作業的 notebook，已忽略。", "An extra notebook that is not part of the assignment was ignored."),
    "tampered_cell": ("鎖定或測試 cell 被修改過，評分時已還原成原版。", "A locked or test cell was edited; it was restored before grading."),
    "missing_cell": ("有 cell 被刪除，評分時已補回原版。", "A cell was deleted; the original was put back before grading."),
    "duplicate_grade_id": ("有重複的 cell 識別碼（grade_id）。", "Two cells share one grade_id."),
    "changed_points": ("測試 cell 的配分被改過，以原本配分計算。", "A test cell's points were changed; the original points count."),
    "changed_cell_type": ("cell 的類型被改過，已還原。", "A cell's type was changed; it was restored."),
    "timeout_cpu": ("程式用掉的 CPU 時間超過限制而被中斷（以 CPU 時間計算，機器忙碌不會算在你身上）。",
                    "The code used more CPU time than its limit and was interrupted (judged by CPU time, so a busy machine does not count against you)."),
    "timeout_wall": ("程式等待太久沒有進展（例如卡在 sleep 或鎖），超過防止卡死的時間而被中斷。",
                     "The code waited without progress (a sleep or a lock) past the guard against hangs and was interrupted."),
    "timeout": ("執行超過時間限制。", "The code ran past its time limit."),
    "kernel_died": ("kernel 當掉了；已在新的 kernel 中略過出事的 cell 重跑，其餘部分照常評分。",
                    "The kernel died; the notebook was run again without the cells that killed it, and the rest was graded."),
    "memory_limit": ("超過記憶體上限。", "The code went over the memory limit."),
    "process_limit": ("產生太多行程，多出來的 fork 被拒絕。", "Too many processes were started; further forks were refused."),
    "output_truncated": ("輸出太多，只保留開頭的一部分。", "Too much output; only its beginning was kept."),
    "isolation_degraded": ("這次評分沒有完整的沙箱隔離（助教端設定）；成績照常計算。", "Graded without full sandbox isolation (a grading-host setting); the score counts as usual."),
    "late": ("遲交。", "Submitted late."),
    "reference_artifact": ("前面的 notebook 沒有產生可用的檔案，後面的 notebook 改用參考解答的檔案評分，一個錯誤只扣一次分。",
                           "An earlier notebook produced no usable file; later notebooks were graded with the reference's copy, so one mistake costs once."),
    "slow_kernel_start": ("kernel 第一次啟動沒有及時回應，已重新啟動；不影響成績。", "The kernel did not answer in time at first and was started again; this does not affect the score."),
    "warm_kernel_fallback": ("kernel 沒能從預先載入套件的範本啟動，改為一般方式啟動（評分主機的狀況）；只是比較慢，不影響成績。",
                             "The kernel could not start from the preloaded template and was started the ordinary way (a grading-host matter); it only took longer and does not affect the score."),
}


def explain(flag: dict, lang: str = "zh") -> str:
    """The student-facing sentence for ``flag``; a timeout says which limit fired."""
    kind = flag.get("kind", "")
    if kind == "timeout":
        detail = flag.get("detail", "")
        kind = "timeout_cpu" if "of CPU time" in detail else "timeout_wall" if "wall-clock" in detail else kind
    zh, en = FLAG_TEXT.get(kind, ("", ""))
    return zh if lang == "zh" else en
