"""Words of the reports in both languages; templates never hold language-specific text."""
LABELS = {
    "zh": {
        "feedback": "作業回饋", "student": "學生", "score": "分數", "pending": "待 GPU 評分",
        "check": "檢查", "status": "狀態", "points": "得分", "hint": "提示", "message": "說明",
        "flags": "標記", "cells": "執行時出錯的 cell", "ungraded": "無法評分",
        "hidden": "隱藏", "visible": "公開", "graded_at": "評分時間", "environment": "環境",
        "passed": "通過", "failed": "未通過", "error": "錯誤", "pending_status": "待評",
        "no_flags": "沒有標記。", "reason": "原因", "total": "總分",
    },
    "en": {
        "feedback": "Feedback", "student": "Student", "score": "Score", "pending": "pending a GPU",
        "check": "Check", "status": "Status", "points": "Points", "hint": "Hint", "message": "Message",
        "flags": "Flags", "cells": "Cells that raised errors", "ungraded": "Could not be graded",
        "hidden": "hidden", "visible": "visible", "graded_at": "Graded at", "environment": "Environment",
        "passed": "passed", "failed": "failed", "error": "error", "pending_status": "pending",
        "no_flags": "No flags.", "reason": "Reason", "total": "Total",
    },
}
STATUS_ICON = {"passed": "✅", "failed": "❌", "error": "⚠️", "pending": "⏳"}
