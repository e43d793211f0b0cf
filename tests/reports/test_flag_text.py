"""Every flag the engine raises is explained to the student in both languages, and a timeout
says which limit fired."""
from __future__ import annotations

import pytest

from graders.intake import flags as F
from graders.reports.feedback import render
from graders.reports.flag_text import FLAG_TEXT, explain

KINDS = sorted(v for k, v in vars(F).items() if k.isupper() and isinstance(v, str))


@pytest.mark.parametrize("kind", KINDS)
def test_every_flag_kind_has_a_zh_and_an_en_sentence(kind):
    zh, en = FLAG_TEXT[kind]
    assert zh.strip() and en.strip() and zh != en


def test_a_timeout_says_whether_cpu_time_or_the_hang_guard_fired():
    cpu = {"kind": "timeout", "detail": "cell train: timed out: used 301 s of CPU time, over its limit of 300 s"}
    wall = {"kind": "timeout", "detail": "cell wait: timed out: still running after 960 s of wall-clock time (the guard against hangs)"}
    assert "CPU 時間" in explain(cpu, "zh") and "CPU time" in explain(cpu, "en")
    assert "卡死" in explain(wall, "zh") and "hangs" in explain(wall, "en")


def test_feedback_pages_carry_the_explanation_before_the_engine_detail():
    result = {"assignment": "a", "student": "s", "status": "graded", "score": 1, "max_score": 2, "pending_points": 0,
              "checks": [], "cells": {}, "environment": {}, "graded_at": "now",
              "flags": [{"kind": "kernel_died", "detail": "cell x: the kernel exited (status 1)", "notebook": "n.ipynb"}]}
    for fmt in ("md", "html"):
        zh = render(result, fmt, "zh")
        assert FLAG_TEXT["kernel_died"][0] in zh and "the kernel exited (status 1)" in zh
        assert FLAG_TEXT["kernel_died"][1] in render(result, fmt, "en")
