"""02-benchmark-scoring: log-likelihoods, acc / acc_norm / acc_bytes against lm-evaluation-harness run
by the grader on the same model, ROUGE-L against rouge-score, and the report recomputed."""
import struct

import pytest
import torch

from graders.suites.artifacts import read_json_artifact
from graders.suites.evaluation_oracles import close, require

NB = "02-benchmark-scoring"
METRICS = ("acc", "acc_norm", "acc_bytes")
T_LL = {"zh": "對數似然與 lm-evaluation-harness 一致", "en": "log-likelihoods agree with lm-evaluation-harness"}
H_LL = {"zh": "context 結尾的空白移到 continuation；整段編碼後切開，不要把 continuation 單獨編碼；只加總 continuation 的 token。",
        "en": "Move the context's trailing spaces to the continuation; encode the whole string and split it; "
              "sum over the continuation's tokens only."}
T_SCORE = {"zh": "acc、acc_norm、acc_bytes 的判定", "en": "acc, acc_norm and acc_bytes of one question"}
H_SCORE = {"zh": "平手取第一個；acc_norm 除以選項的字元數、acc_bytes 除以 UTF-8 位元組數（不是 token 數）。",
           "en": "Ties go to the first choice; acc_norm divides by the choice's characters, acc_bytes by its UTF-8 bytes "
                 "(not tokens)."}
T_TASK = {"zh": "任務分數與 lm-evaluation-harness 相同", "en": "task scores equal lm-evaluation-harness's"}
H_TASK = {"zh": "context = TEMPLATE.format(question=…)，continuation = DELIMITER + 選項。",
          "en": "context = TEMPLATE.format(question=...), continuation = DELIMITER + choice."}
T_ROUGE = {"zh": "ROUGE-L 與 rouge-score 一致", "en": "ROUGE-L agrees with rouge-score"}
H_ROUGE = {"zh": "小寫、非 a-z0-9 換成空白再切開；P = LCS/系統輸出長度，R = LCS/參考答案長度，F = 2PR/(P+R)。",
           "en": "Lower-case, non a-z0-9 to spaces, split; P = LCS/candidate length, R = LCS/reference length, F = 2PR/(P+R)."}
T_REPORT = {"zh": "評估報告的每個數字", "en": "every figure of the evaluation report"}
H_REPORT = {"zh": "每組（en、zh、all）的題數與三個指標的平均；ROUGE-L 是所有摘要 F 的平均。",
            "en": "Per subset (en, zh, all): the count and the mean of each metric; ROUGE-L is the mean F over the summaries."}


def _pick(rng, n: int, k: int) -> list[int]:
    return sorted(int(i) for i in torch.randperm(n, generator=rng)[:k])


def _split_inside_a_token(profile, contexts: list[str]) -> list[tuple[str, str]]:
    """A pair cut where the tokenizer merges across the cut, so that encoding the continuation
    on its own differs from splitting the whole encoding (the profile's own tokenizer decides)."""
    from common_utils.models import load_tokenizer

    tok = load_tokenizer(profile)
    for context in contexts:
        for word in ("mountain", "Paris", "flower", "Tokyo", "horse", "river"):
            for cut in range(1, len(word)):
                ctx, cont = f"{context} {word[:cut]}", word[cut:]
                if tok(ctx + cont)["input_ids"] != tok(ctx)["input_ids"] + tok(cont)["input_ids"]:
                    return [(ctx, cont)]
    return []


@pytest.mark.check(points=2, cell="test-loglikelihood", title={"zh": "encode_pair 的切法", "en": "encode_pair splits like lm-eval"},
                   hint=H_LL,
                   visibility="hidden")  # reaches the reference: none in a student kit
def test_encode_pair(submission, reference, lm_eval_result, profile, rng):
    cases = []
    for i in _pick(rng, len(lm_eval_result["samples"]), 3):
        context, continuation = lm_eval_result["samples"][i]["arguments"][0]
        cases += [(context, continuation), (context + " ", continuation.lstrip())]
    cases += _split_inside_a_token(profile, [s["arguments"][0][0] for s in lm_eval_result["samples"]])
    for args in cases:
        got = submission.nb(NB).call("encode_pair", *args)
        want = reference.nb(NB).call("encode_pair", *args)
        require(got == want, f"encode_pair{args!r} 應為 {want}，實際 {got}。", f"encode_pair{args!r} should be {want}, got {got}.")


@pytest.mark.check(points=4, cell="test-loglikelihood", title=T_LL, hint=H_LL, visibility="hidden", timeout=120)
def test_loglikelihood_matches_lm_eval(submission, lm_eval_result, assignment, rng):
    atol = assignment.settings["targets"]["loglikelihood_atol"]
    for i in _pick(rng, len(lm_eval_result["samples"]), 4):
        sample = lm_eval_result["samples"][i]
        k = int(torch.randint(len(sample["lls"]), (1,), generator=rng))
        context, continuation = sample["arguments"][k]
        want = sample["lls"][k]
        # lm-eval moves a context's trailing space into the continuation: both spellings score the same.
        for args in ((context, continuation), (context + " ", continuation.lstrip())):
            got = submission.nb(NB).call("loglikelihood", *args)
            require(close(got, want, atol=atol), f"loglikelihood{args!r}：lm-eval 得到 {want:.5f}，你的是 {got}。",
                    f"loglikelihood{args!r}: lm-eval gives {want:.5f}, yours {got}.")


HAND_MADE = [  # (lls, choices, gold): ties, and characters versus UTF-8 bytes
    ([-2.0, -2.0, -5.0], ["a", "b", "c"], 1),
    ([-3.0, -6.0], ["貓", "cat"], 0),
    ([-6.0, -3.0, -4.5], ["rice", "茶", "tea"], 2),
    ([-4.0, -4.0], ["書", "月"], 0),
    ([-9.0, -4.0], ["天空", "sky"], 0),
]


@pytest.mark.check(points=2, cell="test-score-item", title=T_SCORE, hint=H_SCORE,
                   visibility="hidden")  # reaches the reference: none in a student kit
def test_score_item_hand_made(submission, reference):
    for lls, choices, gold in HAND_MADE:
        got = submission.nb(NB).call("score_item", lls, choices, gold)
        want = reference.nb(NB).call("score_item", lls, choices, gold)
        require({m: got.get(m) for m in METRICS} == want, f"score_item({lls}, {choices}, {gold}) 應為 {want}，實際 {got}。",
                f"score_item({lls}, {choices}, {gold}) should be {want}, got {got}.")


@pytest.mark.check(points=3, cell="test-score-item", title=T_SCORE, hint=H_SCORE, visibility="hidden")
def test_score_item_matches_lm_eval(submission, lm_eval_result, rng):
    for i in _pick(rng, len(lm_eval_result["samples"]), 12):
        sample = lm_eval_result["samples"][i]
        doc = sample["doc"]
        got = submission.nb(NB).call("score_item", sample["lls"], doc["choices"], doc["gold"])
        want = {m: sample[m] for m in METRICS}
        require({m: got.get(m) for m in METRICS} == want, f"「{doc['question']}」：lm-eval 判定 {want}，你的是 {got}。",
                f"'{doc['question']}': lm-eval scores {want}, yours {got}.")


@pytest.mark.check(points=4, cell="test-evaluate-task", title=T_TASK, hint=H_TASK, visibility="hidden", timeout=300)
def test_evaluate_task_on_grader_subset(submission, lm_eval_result, rng):
    samples = [lm_eval_result["samples"][i] for i in _pick(rng, len(lm_eval_result["samples"]), 16)]
    got = submission.nb(NB).call("evaluate_task", [s["doc"] for s in samples])
    for m in METRICS:
        want = sum(s[m] for s in samples) / len(samples)
        require(close(got.get(m), want, atol=1e-9), f"這 {len(samples)} 題的 {m}：lm-eval 得到 {want:.4f}，你的是 {got.get(m)}。",
                f"{m} on these {len(samples)} questions: lm-eval gives {want:.4f}, yours {got.get(m)}.")


@pytest.mark.check(points=2, cell="test-evaluate-task", title=T_TASK, hint=H_TASK, timeout=120)
def test_task_scores_equal_lm_eval(submission, lm_eval_result):
    scores = submission.nb(NB).value("SCORES")
    for m in ("acc", "acc_norm"):
        want = lm_eval_result["metrics"][m]
        require(close(scores.get(m), want, atol=1e-9), f"整個任務的 {m}：lm-evaluation-harness 是 {want:.4f}，你的是 {scores.get(m)}。",
                f"{m} on the whole task: lm-evaluation-harness gives {want:.4f}, yours {scores.get(m)}.")


def _random_summary(rng) -> str:
    words = ["Taipei", "sunny", "RAINY", "31", "degrees", "the", "at", "is", "cloudy,", "Tainan:", "windy.", "18°C", "貓"]
    n = int(torch.randint(0, 9, (1,), generator=rng))
    return " ".join(words[int(i)] for i in torch.randint(len(words), (n,), generator=rng))


def _rouge_score(candidate: str, reference: str) -> dict:
    from rouge_score import rouge_scorer

    s = rouge_scorer.RougeScorer(["rougeL"]).score(reference, candidate)["rougeL"]
    return {"precision": s.precision, "recall": s.recall, "fmeasure": s.fmeasure}


def _require_rouge(got: dict, want: dict, candidate: str, reference: str) -> None:
    require(all(close(got.get(k), v, atol=1e-9) for k, v in want.items()),
            f"rouge_l({candidate!r}, {reference!r})：rouge-score 得到 {want}，你的是 {got}。",
            f"rouge_l({candidate!r}, {reference!r}): rouge-score gives {want}, yours {got}.")


@pytest.mark.check(points=1, cell="test-rouge", title=T_ROUGE, hint=H_ROUGE,
                   visibility="hidden")  # reaches the reference: none in a student kit
def test_rouge_l_on_shipped_pairs(submission, rng):
    from common_utils.datasets import load_eval_dataset

    pairs = load_eval_dataset("summary_pairs")
    for i in _pick(rng, len(pairs), 4):
        c, r = pairs[i]["candidate"], pairs[i]["reference"]
        _require_rouge(submission.nb(NB).call("rouge_l", c, r), _rouge_score(c, r), c, r)


@pytest.mark.check(points=3, cell="test-rouge", title=T_ROUGE, hint=H_ROUGE, visibility="hidden")
def test_rouge_l_on_grader_texts(submission, rng):
    cases = [(_random_summary(rng), _random_summary(rng)) for _ in range(8)] + [("", "Taipei is sunny"), ("貓 狗", "貓")]
    for c, r in cases:
        _require_rouge(submission.nb(NB).call("rouge_l", c, r), _rouge_score(c, r), c, r)


@pytest.mark.check(points=3, cell="test-report", title=T_REPORT, hint=H_REPORT, visibility="hidden")
def test_report_recomputed(submission, lm_eval_result):
    from common_utils.datasets import load_eval_dataset

    report = read_json_artifact(submission.nb(NB), "artifacts/report.json")
    rows = {row.get("subset"): row for row in report.get("table", []) if isinstance(row, dict)}
    for subset in ("en", "zh", "all"):
        docs = [s for s in lm_eval_result["samples"] if subset in ("all", s["doc"]["lang"])]
        want = {"n": len(docs), **{m: sum(s[m] for s in docs) / len(docs) for m in METRICS}}
        got = rows.get(subset, {})
        require(all(close(got.get(k), v, atol=1e-9) for k, v in want.items()),
                f"報告的 {subset} 列：重新計算得到 {want}，報告寫的是 {got}。",
                f"Report row {subset}: recomputed {want}, the report says {got}.")
    pairs = load_eval_dataset("summary_pairs")
    want = sum(_rouge_score(p["candidate"], p["reference"])["fmeasure"] for p in pairs) / len(pairs)
    require(close(report.get("rouge_l"), want, atol=1e-9), f"ROUGE-L 平均應為 {want:.6f}，報告寫的是 {report.get('rouge_l')}。",
            f"The mean ROUGE-L should be {want:.6f}, the report says {report.get('rouge_l')}.")


@pytest.mark.check(points=1, cell="test-report", title={"zh": "報告的圖", "en": "the report's plot"},
                   hint={"zh": "用 matplotlib 存成 PNG：artifacts/report.png。", "en": "Save it with matplotlib as artifacts/report.png."})
def test_report_plot_is_png(submission):
    path = submission.nb(NB).artifact_path("artifacts/report.png")
    head = path.read_bytes()[:24] if path.is_file() else b""
    ok = head[:8] == b"\x89PNG\r\n\x1a\n" and min(struct.unpack(">II", head[16:24])) >= 100
    require(ok, "artifacts/report.png 不存在，或不是至少 100×100 的 PNG。", "artifacts/report.png is missing or not a PNG of at least 100x100.")
