"""Words of the reports in both languages; templates never hold language-specific text."""
LABELS = {
    "zh": {
        "feedback": "作業回饋", "student": "學生", "score": "分數", "pending": "待 GPU 評分",
        "check": "檢查", "status": "狀態", "points": "得分", "hint": "提示", "message": "說明",
        "flags": "標記", "cells": "執行時出錯的 cell", "ungraded": "無法評分",
        "hidden": "隱藏", "visible": "公開", "graded_at": "評分時間", "environment": "環境",
        "passed": "通過", "failed": "未通過", "error": "錯誤", "pending_status": "待評",
        "no_flags": "沒有標記。", "reason": "原因", "total": "總分",
        "review": "助教複閱", "late": "遲交", "days": "天", "due": "截止", "deducted": "扣分",
        "raw_score": "扣分前", "dashboard": "班級總覽", "students": "學生", "graded": "已評分",
        "mean": "平均", "median": "中位數", "score_hist": "分數分布", "pass_rate": "各檢查通過率",
        "time_memory": "每份作業的時間與峰值記憶體", "time": "時間 (秒)", "memory": "峰值記憶體 (MB)",
        "feedback_link": "回饋", "kind": "種類", "detail": "說明", "overrides": "助教複閱",
    },
    "en": {
        "feedback": "Feedback", "student": "Student", "score": "Score", "pending": "pending a GPU",
        "check": "Check", "status": "Status", "points": "Points", "hint": "Hint", "message": "Message",
        "flags": "Flags", "cells": "Cells that raised errors", "ungraded": "Could not be graded",
        "hidden": "hidden", "visible": "visible", "graded_at": "Graded at", "environment": "Environment",
        "passed": "passed", "failed": "failed", "error": "error", "pending_status": "pending",
        "no_flags": "No flags.", "reason": "Reason", "total": "Total",
        "review": "Manual review", "late": "Late", "days": "day(s)", "due": "due", "deducted": "deducted",
        "raw_score": "before penalty", "dashboard": "Class dashboard", "students": "Students", "graded": "Graded",
        "mean": "Mean", "median": "Median", "score_hist": "Score distribution", "pass_rate": "Pass rate per check",
        "time_memory": "Time and peak memory per submission", "time": "time (s)", "memory": "peak memory (MB)",
        "feedback_link": "feedback", "kind": "Kind", "detail": "Detail", "overrides": "Manual reviews",
    },
}
# Status marks drawn without any font: emoji render as empty boxes where no emoji font is installed
# (a fresh Linux desktop, CI browsers). HTML gets inline SVG, Markdown and terminals plain ASCII.
STATUS_TEXT = {"passed": "[ok]", "failed": "[x]", "error": "[!]", "pending": "[..]"}
_SVG = ('<svg class="mark mark-{status}" width="14" height="14" viewBox="0 0 16 16" role="img" aria-label="{status}">'
        '<circle cx="8" cy="8" r="7.5" fill="{fill}"/><path d="{path}" stroke="#fff" stroke-width="2" '
        'stroke-linecap="round" stroke-linejoin="round" fill="none"/></svg>')
_SHAPES = {  # status -> (fill, path): a tick, a cross, an exclamation mark, clock hands
    "passed": ("#176b2c", "M4.5 8.5l2.5 2.5 4.5-5"),
    "failed": ("#a11", "M5 5l6 6M11 5l-6 6"),
    "error": ("#a60", "M8 4v5M8 11.5v.5"),
    "pending": ("#666", "M8 4.5V8l2.5 1.5"),
}
STATUS_SVG = {status: _SVG.format(status=status, fill=fill, path=path) for status, (fill, path) in _SHAPES.items()}
