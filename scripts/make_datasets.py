"""Write the small course datasets to common_utils/data/*.jsonl, deterministically.

Every set is synthetic and templated so that a tiny 2-layer model learns it measurably within a
CPU minute (tests/common_utils/test_learnability.py proves it), in Traditional Chinese and English.

    .venv/bin/python scripts/make_datasets.py
"""
from __future__ import annotations

import json
import random
from pathlib import Path

OUT = Path(__file__).resolve().parent.parent / "common_utils" / "data"
SEED = 20261124

LEXICON = [("貓", "cat"), ("狗", "dog"), ("魚", "fish"), ("鳥", "bird"), ("馬", "horse"), ("牛", "cow"),
           ("水", "water"), ("火", "fire"), ("山", "mountain"), ("河", "river"), ("天", "sky"), ("雨", "rain"),
           ("書", "book"), ("車", "car"), ("花", "flower"), ("樹", "tree"), ("月", "moon"), ("星", "star"),
           ("茶", "tea"), ("米", "rice"), ("門", "door"), ("手", "hand"), ("心", "heart"), ("雪", "snow")]
CAPITALS = [("法國", "France", "巴黎", "Paris"), ("日本", "Japan", "東京", "Tokyo"), ("德國", "Germany", "柏林", "Berlin"),
            ("義大利", "Italy", "羅馬", "Rome"), ("英國", "the United Kingdom", "倫敦", "London"),
            ("西班牙", "Spain", "馬德里", "Madrid"), ("韓國", "South Korea", "首爾", "Seoul"),
            ("泰國", "Thailand", "曼谷", "Bangkok"), ("埃及", "Egypt", "開羅", "Cairo"), ("加拿大", "Canada", "渥太華", "Ottawa")]
WORDS = ["lora", "model", "token", "adapter", "prompt", "layer", "merge", "train", "weight", "batch", "query", "value"]


def instructions(rng: random.Random) -> list[dict]:
    rows = []
    for zh, en in LEXICON:
        rows.append({"instruction": "把單字翻成英文", "input": zh, "output": en})
        rows.append({"instruction": "Translate the word into Chinese", "input": en, "output": zh})
    for zh_c, en_c, zh_cap, en_cap in CAPITALS:
        rows.append({"instruction": f"What is the capital of {en_c}?", "input": "", "output": en_cap})
        rows.append({"instruction": f"{zh_c}的首都是哪裡？", "input": "", "output": zh_cap})
    for word in WORDS:
        rows.append({"instruction": "Reverse the word", "input": word, "output": word[::-1]})
        rows.append({"instruction": "Uppercase the word", "input": word, "output": word.upper()})
        rows.append({"instruction": "把這個英文單字的字母數寫出來", "input": word, "output": str(len(word))})
    for a in range(10):
        for b in range(10):
            rows.append({"instruction": f"What is {a} + {b}?", "input": "", "output": str(a + b)})
            rows.append({"instruction": f"{a} 加 {b} 等於多少？", "input": "", "output": str(a + b)})
            rows.append({"instruction": f"What is {a} times {b}?", "input": "", "output": str(a * b)})
            rows.append({"instruction": f"{a} 乘以 {b} 等於多少？", "input": "", "output": str(a * b)})
    rng.shuffle(rows)
    return rows


POSITIVE = [("很棒", "great"), ("很好吃", "delicious"), ("令人開心", "wonderful"), ("非常喜歡", "lovely"), ("很精彩", "excellent")]
NEGATIVE = [("很糟", "terrible"), ("很難吃", "awful"), ("令人失望", "disappointing"), ("非常討厭", "horrible"), ("很無聊", "boring")]
SUBJECTS = [("這部電影", "This movie"), ("這家餐廳", "This restaurant"), ("這本書", "This book"), ("這首歌", "This song"),
            ("這堂課", "This class"), ("這個模型", "This model"), ("這次旅行", "This trip"), ("這個遊戲", "This game")]


def sentiment(rng: random.Random) -> list[dict]:
    rows = []
    for label, words in ((1, POSITIVE), (0, NEGATIVE)):
        for zh_s, en_s in SUBJECTS:
            for zh_w, en_w in words:
                rows.append({"text": f"{zh_s}{zh_w}。", "label": label, "lang": "zh"})
                rows.append({"text": f"{en_s} is {en_w}.", "label": label, "lang": "en"})
    rng.shuffle(rows)
    return rows


def paraphrase(rng: random.Random) -> list[dict]:
    rows = []
    for zh_s, en_s in SUBJECTS:
        for (zh_p, en_p), (zh_n, en_n) in zip(POSITIVE, NEGATIVE):
            rows.append({"sentence1": f"{en_s} is {en_p}.", "sentence2": f"I think {en_s.lower()} is {en_p}.", "label": 1})
            rows.append({"sentence1": f"{en_s} is {en_p}.", "sentence2": f"{en_s} is {en_n}.", "label": 0})
            rows.append({"sentence1": f"{zh_s}{zh_p}。", "sentence2": f"我覺得{zh_s}{zh_p}。", "label": 1})
            rows.append({"sentence1": f"{zh_s}{zh_p}。", "sentence2": f"{zh_s}{zh_n}。", "label": 0})
    rng.shuffle(rows)
    return rows


CITIES = [("台北", "Taipei"), ("台中", "Taichung"), ("高雄", "Kaohsiung"), ("台南", "Tainan"), ("花蓮", "Hualien")]
WEATHER = [("晴朗", "sunny"), ("下雨", "rainy"), ("多雲", "cloudy"), ("颳風", "windy")]


def summaries(rng: random.Random) -> list[dict]:
    rows = []
    for zh_c, en_c in CITIES:
        for zh_w, en_w in WEATHER:
            for temp in (18, 25, 31):
                rows.append({"document": f"今天{zh_c}的天氣{zh_w}，氣溫大約{temp}度，氣象局提醒民眾出門前留意天氣變化。",
                             "summary": f"{zh_c}{zh_w}，{temp}度。"})
                rows.append({"document": f"Today in {en_c} the weather is {en_w}, around {temp} degrees; "
                                         "forecasters ask people to check the sky before going out.",
                             "summary": f"{en_c}: {en_w}, {temp} degrees."})
    rng.shuffle(rows)
    return rows


# Rejected answers are evasive, as in helpfulness preference data: learnable by a tiny reward model.
EVASIVE = ["我不知道。", "這個問題我不回答。", "請自己查。", "I don't know.", "No idea.", "Ask someone else.",
           "I would rather not say.", "不清楚，下一題。"]


def preferences(rng: random.Random, rows: list[dict]) -> list[dict]:
    prefs = []
    for row in rows[:300]:
        prompt = row["instruction"] + (f"\n{row['input']}" if row["input"] else "")
        prefs.append({"prompt": prompt, "chosen": row["output"], "rejected": rng.choice(EVASIVE)})
    return prefs


def main(out: Path = OUT) -> None:
    out.mkdir(parents=True, exist_ok=True)
    rng = random.Random(SEED)
    inst = instructions(rng)
    sets = {"instructions": inst, "sentiment": sentiment(rng), "paraphrase": paraphrase(rng),
            "summaries": summaries(rng), "preferences": preferences(rng, inst)}
    for name, rows in sets.items():
        with open(out / f"{name}.jsonl", "w", encoding="utf-8") as fh:
            for row in rows:
                fh.write(json.dumps(row, ensure_ascii=False, sort_keys=True) + "\n")
        print(f"{name}.jsonl: {len(rows)} rows")


if __name__ == "__main__":
    main()
