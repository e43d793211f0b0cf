"""Feedback status marks need no emoji font: inline SVG in HTML, plain ASCII in Markdown."""
from __future__ import annotations

import unicodedata

from graders.reports.feedback import render
from graders.reports.labels import STATUS_TEXT
from tests.records.classroom import result

STATUSES = ("passed", "failed", "error", "pending")


def _pictographs(text: str) -> list[str]:
    """Symbols a browser draws from an emoji font (category So at or above U+2190, variation selectors)."""
    return sorted({ch for ch in text if (unicodedata.category(ch) == "So" and ord(ch) >= 0x2190)
                   or 0xFE00 <= ord(ch) <= 0xFE0F})


def test_html_feedback_draws_every_status_as_svg_without_pictographs():
    page = render(result("bob", "partial"), "html", "zh")  # bob has passed, failed, error and pending checks
    assert _pictographs(page) == []
    for status in STATUSES:
        assert f'<svg class="mark mark-{status}"' in page, status


def test_markdown_feedback_marks_are_ascii():
    text = render(result("bob", "partial"), "md", "en")
    assert _pictographs(text) == []
    assert all(mark.isascii() for mark in STATUS_TEXT.values())
    for status in STATUSES:
        assert f"| {STATUS_TEXT[status]} " in text, status
