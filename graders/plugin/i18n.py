"""The language of feedback: zh-TW by default, English with ``--lang en``.

Suites write failure messages with ``say(zh, en)``; the grader sets the language once per run.
"""
from __future__ import annotations

_lang = "zh"


def set_lang(lang: str) -> None:
    global _lang
    if lang not in ("zh", "en"):
        raise ValueError(f"unknown language {lang!r}; use zh or en")
    _lang = lang


def lang() -> str:
    return _lang


def say(zh: str, en: str) -> str:
    return zh if _lang == "zh" else en


def pick(texts: dict) -> str:
    return texts.get(_lang) or texts.get("zh") or next(iter(texts.values()))
