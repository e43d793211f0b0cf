"""04-quality-filter: signals on grader texts, each rule probed just below, at and just above its
threshold (the thresholds read from the reference), and the corpus counts equal the reference's."""
import pytest
import torch

from graders.suites.artifacts import read_json_artifact
from graders.suites.evaluation_oracles import close, require

NB = "04-quality-filter"
T_SIGNALS = {"zh": "品質訊號", "en": "quality signals"}
H_SIGNALS = {"zh": "中文每個漢字算一個字；重複行只算和前面相同的那些；停用詞算次數、英文轉小寫。",
             "en": "Each Chinese character is a word; only lines equal to an earlier line are duplicates; "
                   "stop words are counted as occurrences, English lower-cased."}
T_RULES = {"zh": "規則在門檻上下的判定", "en": "rules just below, at and above their thresholds"}
H_RULES = {"zh": "剛好等於門檻時保留：字數 < MIN_WORDS、> MAX_WORDS、比例 > 上限、停用詞 < MIN_STOP_WORDS 才移除。",
           "en": "At the threshold a document is kept: remove on words < MIN_WORDS or > MAX_WORDS, a ratio above its "
                 "maximum, stop words < MIN_STOP_WORDS."}
FILLER = ["river", "market", "lantern", "bridge", "garden", "harbour", "village", "tower", "forest", "kitchen"]


def _words(rng, n: int) -> list[str]:
    return [FILLER[int(i)] + str(int(j)) for i, j in zip(torch.randint(len(FILLER), (n,), generator=rng),
                                                         torch.randint(100, (n,), generator=rng))]


def _doc(rng, n_words: int, stop: int = 2, symbols: int = 0, lines: int = 1, dup_lines: int = 0, zh: bool = False) -> str:
    """A document with exactly these counts (stop words are part of n_words); distinct lines unless duplicated."""
    stop_words = ["的" if zh else "the"] * stop
    if zh:
        body = [chr(0x8000 + int(i)) for i in torch.randint(2000, (n_words - stop,), generator=rng)]
    else:
        body = _words(rng, n_words - stop)
    words = stop_words + body
    per_line = max(1, len(words) // lines)
    rows = [" ".join(words[i * per_line:(i + 1) * per_line if i < lines - 1 else None]) for i in range(lines)]
    rows += [rows[-1]] * dup_lines if dup_lines else []
    text = "\n".join(rows)
    return text + " #" * symbols


def _require_same(submission, reference, fn: str, text: str, label: str) -> None:
    got = submission.nb(NB).call(fn, text)
    want = reference.nb(NB).call(fn, text)
    if isinstance(want, dict):
        ok = got.keys() == want.keys() and all(close(got[k], v, atol=1e-12) for k, v in want.items())
    else:
        ok = got == want
    require(ok, f"{label}：{fn} 應為 {want}，實際 {got}。", f"{label}: {fn} should be {want}, got {got}.")


@pytest.mark.check(points=2, cell="test-signals", title=T_SIGNALS, hint=H_SIGNALS,
                   visibility="hidden")  # reaches the reference: none in a student kit
def test_signals_on_grader_texts(submission, reference, rng):
    for zh in (False, True):
        text = _doc(rng, 30, stop=3, symbols=2, lines=4, dup_lines=2, zh=zh) + ("……" if zh else " ...")
        _require_same(submission, reference, "quality_signals", text, "中文文件" if zh else "English document")


@pytest.mark.check(points=3, cell="test-signals", title=T_SIGNALS, hint=H_SIGNALS, visibility="hidden")
def test_signals_on_corpus_documents(submission, reference, rng):
    from common_utils.datasets import load_eval_dataset

    corpus = load_eval_dataset("web_corpus")
    for i in torch.randperm(len(corpus), generator=rng)[:8]:
        _require_same(submission, reference, "quality_signals", corpus[int(i)]["text"], f"document {int(i)}")
    _require_same(submission, reference, "quality_signals", "", "empty document")


def _thresholds(reference) -> dict:
    return {n: reference.nb(NB).value(n) for n in ("MIN_WORDS", "MAX_WORDS", "MAX_SYMBOL_RATIO", "MAX_DUP_LINE_FRACTION",
                                                    "MIN_STOP_WORDS")}


@pytest.mark.check(points=2, cell="test-rules", title=T_RULES, hint=H_RULES,
                   visibility="hidden")  # reaches the reference: none in a student kit
def test_length_rules_at_thresholds(submission, reference, rng):
    t = _thresholds(reference)
    for n in (t["MIN_WORDS"] - 1, t["MIN_WORDS"], t["MIN_WORDS"] + 1, t["MAX_WORDS"], t["MAX_WORDS"] + 1):
        for zh in (False, True):
            _require_same(submission, reference, "removal_reasons", _doc(rng, n, zh=zh), f"{n} {'漢字' if zh else 'words'}")


@pytest.mark.check(points=4, cell="test-rules", title=T_RULES, hint=H_RULES, visibility="hidden")
def test_ratio_and_stop_word_rules_at_thresholds(submission, reference, rng):
    t = _thresholds(reference)
    n = 10 * max(t["MIN_WORDS"], 10)
    at = round(t["MAX_SYMBOL_RATIO"] * n)  # n is a multiple of 10 so that common ratios land on whole counts
    for symbols in (at - 1, at, at + 1):
        _require_same(submission, reference, "removal_reasons", _doc(rng, n, symbols=symbols), f"{symbols} symbols / {n} words")
    lines = 20
    at = round(t["MAX_DUP_LINE_FRACTION"] * lines)
    for dup in (at - 1, at, at + 1):
        _require_same(submission, reference, "removal_reasons", _doc(rng, n, lines=lines - dup, dup_lines=dup),
                      f"{dup} duplicate lines of {lines}")
    for stop in (t["MIN_STOP_WORDS"] - 1, t["MIN_STOP_WORDS"], t["MIN_STOP_WORDS"] + 1):
        for zh in (False, True):
            _require_same(submission, reference, "removal_reasons", _doc(rng, n, stop=stop, zh=zh), f"{stop} stop words")
    _require_same(submission, reference, "removal_reasons", _doc(rng, n, stop=0).upper().replace("#", "") + " THE The",
                  "upper-case stop words")


@pytest.mark.check(points=2, cell="test-filter-corpus", title={"zh": "語料過濾的計數", "en": "corpus filter counts"},
                   hint=H_RULES, visibility="hidden")
def test_filter_counts_on_grader_subset(submission, reference, rng):
    from common_utils.datasets import load_eval_dataset

    corpus = load_eval_dataset("web_corpus")
    texts = [corpus[int(i)]["text"] for i in torch.randperm(len(corpus), generator=rng)[:60]]
    got = submission.nb(NB).call("filter_corpus", texts)
    want = reference.nb(NB).call("filter_corpus", texts)
    require(got == want, f"這 {len(texts)} 份文件：參考解答 {want}，你的 {got}。", f"These {len(texts)} documents: reference {want}, yours {got}.")


@pytest.mark.check(points=2, cell="test-filter-corpus", title={"zh": "整個語料保留與移除的數量", "en": "kept and removed counts of the corpus"},
                   hint=H_RULES,
                   visibility="hidden")  # reaches the reference: none in a student kit
def test_corpus_counts_equal_reference(submission, reference):
    got = read_json_artifact(submission.nb(NB), "artifacts/filter.json").get("counts")
    want = reference.nb(NB).value("FILTER_COUNTS")
    require(got == want, f"參考解答 {want}，你的 {got}。", f"Reference {want}, yours {got}.")
