"""Write the evaluation-and-data lab's small datasets to common_utils/data/eval/, deterministically.

- ``mc_task.jsonl``: a multiple-choice task (zh-TW and English) scored by log-likelihood, the same
  rows the local lm-evaluation-harness task in ``common_utils/data/eval/lm_eval_task/`` reads;
- ``summary_pairs.jsonl``: reference summaries and system outputs for ROUGE-L;
- ``web_corpus.jsonl``: a noisy web-like corpus (zh-TW and English) with exact duplicates that
  differ only in case, spacing and punctuation, planted near-duplicates, and documents each
  quality heuristic should remove (too short, symbol-heavy, repeated lines, no stop words).

    .venv/bin/python scripts/make_eval_datasets.py
"""
from __future__ import annotations

import json
import random
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from make_datasets import CAPITALS, CITIES, LEXICON, WEATHER  # noqa: E402  (one word list, one place)

OUT = Path(__file__).resolve().parent.parent / "common_utils" / "data" / "eval"
SEED = 20261125


def mc_task(rng: random.Random) -> list[dict]:
    rows = []
    for zh_c, en_c, zh_cap, en_cap in CAPITALS:
        others = [c for c in CAPITALS if c[0] != zh_c]
        for lang, question, gold, pick in (("en", f"What is the capital of {en_c}?", en_cap, 3),
                                           ("zh", f"{zh_c}的首都是哪裡？", zh_cap, 2)):
            choices = [gold] + [o[pick] for o in rng.sample(others, 3)]
            rng.shuffle(choices)
            rows.append({"question": question, "choices": choices, "gold": choices.index(gold), "lang": lang})
    for zh, en in LEXICON:
        others = [w for w in LEXICON if w[0] != zh]
        for lang, question, gold, pick in (("en", f"How do you say {zh} in English?", en, 1),
                                           ("zh", f"{en} 的中文是什麼？", zh, 0)):
            choices = [gold] + [o[pick] for o in rng.sample(others, 3)]
            rng.shuffle(choices)
            rows.append({"question": question, "choices": choices, "gold": choices.index(gold), "lang": lang})
    rng.shuffle(rows)
    return rows


def summary_pairs(rng: random.Random) -> list[dict]:
    fillers = ["today", "mostly", "very", "the", "weather", "near", "about", "and"]
    rows = []
    for _, en_c in CITIES:
        for _, en_w in WEATHER:
            temp = rng.choice((18, 25, 31))
            reference = f"{en_c}: {en_w}, {temp} degrees."
            words = f"{en_c} is {en_w} at {temp} degrees".split()
            for _ in range(rng.randint(0, 3)):  # system outputs: words dropped, inserted, swapped
                op = rng.choice(("drop", "insert", "swap"))
                i = rng.randrange(len(words))
                if op == "drop" and len(words) > 2:
                    words.pop(i)
                elif op == "insert":
                    words.insert(i, rng.choice(fillers))
                else:
                    j = rng.randrange(len(words))
                    words[i], words[j] = words[j], words[i]
            rows.append({"reference": reference, "candidate": " ".join(words).capitalize() + "."})
    return rows


EN_ADJ = ["old", "small", "quiet", "busy", "green", "famous", "tiny", "bright", "cold", "friendly", "narrow", "modern",
          "rainy", "broken", "hidden", "local", "wooden", "empty", "crowded", "distant"]
EN_NOUN = ["river", "shop", "library", "council", "market", "school", "trail", "station", "museum", "park", "bakery",
           "harbour", "bridge", "garden", "factory", "theatre", "clinic", "village", "tower", "farm", "kitchen", "forest"]
EN_VERB = ["opened", "cleaned", "painted", "visited", "closed", "rebuilt", "described", "photographed", "measured",
           "repaired", "praised", "explored", "mapped", "decorated", "guarded", "watched"]
EN_WHEN = ["on Monday", "last winter", "in the morning", "after the storm", "before the holiday", "at night",
           "during the festival", "in spring", "every weekend", "at noon"]
ZH_ADJ = ["老舊的", "安靜的", "熱鬧的", "翠綠的", "有名的", "小小的", "明亮的", "寒冷的", "友善的", "狹窄的", "現代的", "隱密的"]
ZH_NOUN = ["河岸", "商店", "圖書館", "議會", "市場", "學校", "步道", "車站", "博物館", "公園", "麵包店", "港口", "橋樑",
           "花園", "工廠", "劇場", "診所", "村莊", "高塔", "農場", "廚房", "森林"]
ZH_VERB = ["打掃了", "粉刷了", "參觀了", "關閉了", "重建了", "描述了", "拍攝了", "測量了", "修理了", "稱讚了", "探索了", "裝飾了"]
ZH_WHEN = ["星期一", "去年冬天", "早上", "颱風過後", "連假前", "晚上", "節慶期間", "春天", "每個週末", "中午"]
KEYWORDS = ["cheap flights", "best price", "buy now", "free shipping", "top deals", "discount code", "hot sale"]


def en_sentence(rng: random.Random) -> str:
    c = rng.choice
    return (f"{c(EN_WHEN).capitalize()} the {c(EN_ADJ)} {c(EN_NOUN)} was {c(EN_VERB)} by {rng.randint(2, 90)} people "
            f"and they said that the {c(EN_ADJ)} {c(EN_NOUN)} is {c(EN_ADJ)}.")


def en_doc(rng: random.Random, n: int) -> str:
    return "\n".join(en_sentence(rng) for _ in range(n))


def zh_doc(rng: random.Random, n: int) -> str:
    c = rng.choice
    return "\n".join(f"{c(ZH_WHEN)}有{rng.randint(2, 90)}個人{c(ZH_VERB)}{c(ZH_ADJ)}{c(ZH_NOUN)}，"
                     f"他們說{c(ZH_NOUN)}是{c(ZH_ADJ).rstrip('的')}的。" for _ in range(n))


def near_copy(rng: random.Random, text: str, edits: int) -> str:
    """A near-duplicate: a few characters changed, as a scraper's copy of the same page would be."""
    chars = list(text)
    for _ in range(edits):
        i = rng.randrange(len(chars))
        if chars[i].isalpha():
            chars[i] = rng.choice("aeiou") if chars[i].isascii() else rng.choice("的是在有人")
    return "".join(chars)


def exact_variant(rng: random.Random, text: str) -> str:
    """The same text after normalisation: case, spacing and punctuation differ."""
    variant = (text.upper() if rng.random() < 0.5 else text).replace("\n", " \n  ")
    return variant.replace(".", "!").replace("。", "！") if rng.random() < 0.5 else variant + " ..."


def web_corpus(rng: random.Random) -> list[str]:
    docs = [en_doc(rng, rng.randint(3, 6)) for _ in range(70)] + [zh_doc(rng, rng.randint(3, 6)) for _ in range(70)]
    originals = list(docs)
    docs += [exact_variant(rng, rng.choice(originals)) for _ in range(20)]
    docs += [near_copy(rng, d, rng.randint(1, 4)) for d in rng.sample(originals, 30)]
    docs += [f"The {rng.choice(EN_NOUN)} {rng.choice(EN_VERB)}." for _ in range(10)]  # too short
    docs += [zh_doc(rng, 1)[:8] for _ in range(8)]
    docs += [en_doc(rng, 3) + "\n" + " ".join(f"#{rng.choice(KEYWORDS).replace(' ', '')}" for _ in range(8))
             for _ in range(10)]  # hashtags
    docs += [zh_doc(rng, 3) + "……" * 6 for _ in range(6)]
    docs += [en_doc(rng, 1) + ("\n" + en_doc(rng, 1)) * rng.randint(3, 5) for _ in range(10)]  # repeated lines
    docs += ["\n".join(" ".join(rng.sample(KEYWORDS, 4)) for _ in range(4)) for _ in range(10)]  # keyword lists
    rng.shuffle(docs)
    return docs


def write_jsonl(path: Path, rows: list[dict]) -> None:
    with open(path, "w", encoding="utf-8") as fh:
        for row in rows:
            fh.write(json.dumps(row, ensure_ascii=False, sort_keys=True) + "\n")
    print(f"{path.name}: {len(rows)} rows")


def main(out: Path = OUT) -> None:
    out.mkdir(parents=True, exist_ok=True)
    rng = random.Random(SEED)
    write_jsonl(out / "mc_task.jsonl", mc_task(rng))
    write_jsonl(out / "summary_pairs.jsonl", summary_pairs(rng))
    write_jsonl(out / "web_corpus.jsonl", [{"id": i, "text": t} for i, t in enumerate(web_corpus(rng))])


if __name__ == "__main__":
    main()
