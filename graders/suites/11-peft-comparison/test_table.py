"""Lab 1.1, parts 5-7: the comparison table, each figure recomputed by the grader, and the plot."""
import importlib

import pytest
import torch

from graders.plugin import say
from graders.plugin.outcomes import Diagnosed
from graders.suites import peft_tester
from graders.suites.artifacts import copy_safe, read_json_artifact

measure = importlib.import_module("graders.suites.11-peft-comparison.measure")

NB = "01-compare"
KEYS = ("method", "trainable", "total", "trainable_pct", "memory_mib", "seconds_per_step", "accuracy")


def table(handle, need: tuple = KEYS) -> list[dict]:
    """The rows of artifacts/comparison.json, refused with the reason when malformed; ``need`` names
    the columns a check reads (a missing column costs the checks that read it)."""
    from common_utils.peft_setup import COMPARED

    rows = read_json_artifact(handle, "artifacts/comparison.json")
    if not isinstance(rows, list) or not all(isinstance(r, dict) for r in rows):
        raise Diagnosed(say("comparison.json 應是一個 list，每個方法一個 dict。", "comparison.json should be a list of one dict per method."))
    methods = [r.get("method") for r in rows]
    if methods != list(COMPARED):
        raise Diagnosed(say(f"表的方法是 {methods}，應為 {list(COMPARED)}（依序）。",
                            f"The table's methods are {methods}; expected {list(COMPARED)} (in order)."))
    for r in rows:
        missing = [k for k in need if k not in r]
        bad = [k for k in need[1:] if k in r and (not isinstance(r[k], (int, float)) or isinstance(r[k], bool))]
        if missing or bad:
            raise Diagnosed(say(f"{r['method']} 那列缺少 {missing}，或 {bad} 不是數字。",
                                f"The {r['method']} row lacks {missing}, or {bad} are not numbers."))
    return rows


@pytest.mark.check(points=1, cell="test-table", title={"zh": "比較表：每個方法一列、欄位齊全", "en": "the table: one row per method, every column"},
                   hint={"zh": "table_row 回傳 method、trainable、total、trainable_pct、memory_mib、seconds_per_step、accuracy。",
                         "en": "table_row returns method, trainable, total, trainable_pct, memory_mib, seconds_per_step, accuracy."})
def test_rows(submission):
    assert len(table(submission.nb(NB))) > 0


@pytest.mark.check(points=2, cell="test-table", title={"zh": "表的參數量與可訓練比例（grader 重數）",
                                                       "en": "the table's counts and trainable percentages (recounted)"},
                   hint={"zh": "trainable、total 來自 count_trainable；trainable_pct 是百分比：100 * trainable / total。",
                         "en": "trainable and total come from count_trainable; trainable_pct is a percentage: 100 * trainable / total."})
def test_counts(submission, profile):
    wrong = []
    for row in table(submission.nb(NB), ("method", "trainable", "total", "trainable_pct")):
        trainable, total = measure.counts(measure.seeded_model(row["method"], profile))
        pct = 100.0 * trainable / total
        if (row["trainable"], row["total"]) != (trainable, total) or abs(row["trainable_pct"] - pct) > 1e-6 * max(pct, 1e-9):
            wrong.append(say(f"{row['method']}：({row['trainable']:,}, {row['total']:,}, {row['trainable_pct']:.6g}%)，應為 ({trainable:,}, {total:,}, {pct:.6g}%)",
                             f"{row['method']}: ({row['trainable']:,}, {row['total']:,}, {row['trainable_pct']:.6g}%), expected "
                             f"({trainable:,}, {total:,}, {pct:.6g}%)"))
    assert not wrong, "; ".join(wrong)


@pytest.mark.check(points=2, cell="test-table", title={"zh": "表的記憶體（grader 用同一個 batch 重算）",
                                                       "en": "the table's memory (recomputed on the same batch)"},
                   hint={"zh": "memory_mib 是 training_memory(...)[\"total\"] 除以 2**20，在訓練前、第一個訓練 batch 上量。",
                         "en": "memory_mib is training_memory(...)[\"total\"] / 2**20, measured before training on the first training batch."})
def test_memory(submission, profile, assignment):
    rtol = assignment.settings["targets"]["memory_rtol"]
    first = measure.data(profile)[0][0]
    wrong = []
    for row in table(submission.nb(NB), ("method", "memory_mib")):
        want = measure.training_memory(measure.seeded_model(row["method"], profile), first)["total"] / 2**20
        if abs(row["memory_mib"] - want) > rtol * want:
            wrong.append(say(f"{row['method']}：{row['memory_mib']:.4g} MiB，應為 {want:.4g} MiB",
                             f"{row['method']}: {row['memory_mib']:.4g} MiB, expected {want:.4g} MiB"))
    assert not wrong, "; ".join(wrong)


@pytest.mark.check(points=3, cell="test-table", title={"zh": "表的準確率＝grader 從你存下的參數重算",
                                                       "en": "the table's accuracy = the grader's, from your saved parameters"},
                   hint={"zh": "save_trainable 存訓練後、requires_grad 的參數（鍵名同 named_parameters()）；accuracy 在 eval 模式、以列數計。",
                         "en": "save_trainable saves the trained parameters that require grad (keys as in named_parameters()); "
                               "accuracy in eval mode, over rows."})
def test_accuracy(submission, profile, grader_tmp):
    from safetensors.torch import load_file

    held_out = measure.data(profile)[1]
    handle = submission.nb(NB)
    saved = copy_safe(handle.artifact_path("artifacts/methods"), grader_tmp / "methods")
    wrong = []
    for row in table(handle, ("method", "accuracy")):
        model = measure.seeded_model(row["method"], profile)
        want_keys = {n for n, p in model.named_parameters() if p.requires_grad}
        path = saved / f"{row['method']}.safetensors"
        if not path.is_file():
            wrong.append(say(f"{row['method']}：沒有存下 artifacts/methods/{path.name}", f"{row['method']}: artifacts/methods/{path.name} was not saved"))
            continue
        tensors = load_file(path)
        if set(tensors) != want_keys:
            extra, missing = sorted(set(tensors) - want_keys), sorted(want_keys - set(tensors))
            wrong.append(say(f"{row['method']}：存下的鍵不是可訓練的參數（多了 {extra[:2]}、少了 {missing[:2]}）",
                             f"{row['method']}: the saved keys are not the trainable parameters (extra {extra[:2]}, missing {missing[:2]})"))
            continue
        want = measure.accuracy(peft_tester.load_tensors_into(model, tensors), held_out)
        if abs(row["accuracy"] - want) > 1e-6:
            wrong.append(say(f"{row['method']}：表上 {row['accuracy']:.4f}，存下的參數在 held-out 句子上是 {want:.4f}",
                             f"{row['method']}: the table says {row['accuracy']:.4f}; the saved parameters score {want:.4f} on the held-out rows"))
    assert not wrong, "; ".join(wrong)


@pytest.mark.check(points=2, cell="test-table", title={"zh": "table_row：秒維持秒、bytes 換成 MiB（grader 給的量測值）",
                                                       "en": "table_row: seconds stay seconds, bytes become MiB (the grader's measurements)"},
                   hint={"zh": "seconds_per_step 原樣放進表（秒、每步）；memory_mib 是 memory[\"total\"] / 2**20。",
                         "en": "Put seconds as they are (seconds, per step); memory_mib is memory[\"total\"] / 2**20."})
def test_row_units(submission, profile, rng):
    # Not against the reference's table: millisecond steps differ a hundredfold between a quiet and
    # a busy machine; seconds_per_step itself is checked on a model of known step time.
    from common_utils.peft_setup import COMPARED

    method = list(COMPARED)[int(torch.randint(0, len(COMPARED), (1,), generator=rng))]
    seconds = float(0.001 + torch.rand(1, generator=rng))
    total = int(torch.randint(2**20, 2**28, (1,), generator=rng))
    vocab = measure.seeded_model(method, profile).config.vocab_size
    ids = torch.randint(5, vocab, (4, 9), generator=rng)
    batch = {"input_ids": ids, "attention_mask": torch.ones_like(ids), "labels": torch.randint(0, 2, (4,), generator=rng)}
    row = submission.nb(NB).call("row_on", method, seconds, total, [batch])
    missing = [k for k in ("seconds_per_step", "memory_mib") if k not in row]
    if missing:
        raise Diagnosed(say(f"table_row 回傳的列缺少 {missing}。", f"table_row's row lacks {missing}."))
    wrong = []
    if abs(row["seconds_per_step"] - seconds) > 1e-9 * seconds:
        wrong.append(say(f"給 {seconds:.6f} 秒，表上是 {row['seconds_per_step']:.6g}", f"given {seconds:.6f} s, the row says {row['seconds_per_step']:.6g}"))
    if abs(row["memory_mib"] - total / 2**20) > 1e-9 * total:
        wrong.append(say(f"給 {total:,} bytes，memory_mib 是 {row['memory_mib']:.6g}（應為 {total / 2**20:.6g}）",
                         f"given {total:,} bytes, memory_mib is {row['memory_mib']:.6g} (expected {total / 2**20:.6g})"))
    assert not wrong, "; ".join(wrong)


@pytest.mark.check(points=3, cell="test-table", title={"zh": "圖：grader 的列畫成的點、對數 x 軸、方法名稱",
                                                       "en": "the plot: the grader's rows as points, a log x axis, method names"},
                   hint={"zh": "ax.scatter(trainable_pct, accuracy)、ax.set_xscale('log')、每點 ax.annotate(method, (x, y))、兩軸標籤。",
                         "en": "ax.scatter(trainable_pct, accuracy), ax.set_xscale('log'), ax.annotate(method, (x, y)) per point, "
                               "both axis labels."})
def test_plot(submission, rng):
    n = int(torch.randint(3, 7, (1,), generator=rng))
    rows = [{"method": f"method-{i}-{int(torch.randint(0, 1000, (1,), generator=rng))}", "trainable": 1, "total": 1,
             "trainable_pct": float(10 ** (4 * torch.rand(1, generator=rng) - 2)), "memory_mib": 1.0,
             "seconds_per_step": 0.01, "accuracy": float(torch.rand(1, generator=rng))} for i in range(n)]
    got = submission.nb(NB).call("plot_on", rows)
    want = [(r["trainable_pct"], r["accuracy"]) for r in rows]
    points = [tuple(p) for p in got["points"]]

    def drawn(point, among) -> bool:  # every row's point is among those drawn (a frontier line may add more)
        return any(abs(x - point[0]) <= 1e-6 * max(abs(point[0]), 1) and abs(y - point[1]) <= 1e-6 for x, y in among)

    missing = [p for p in want if not drawn(p, points)]
    if missing:
        if all(drawn(p, [(y, x) for x, y in points]) for p in want):
            raise Diagnosed(say("x 與 y 對調了：x 是 trainable_pct、y 是 accuracy。", "x and y are swapped: x is trainable_pct, y is accuracy."))
        raise Diagnosed(say(f"這些列的 (trainable_pct, accuracy) 不在圖上：{missing[:3]}（圖上的點：{points[:3]}…）",
                            f"These rows' (trainable_pct, accuracy) are not plotted: {missing[:3]} (plotted: {points[:3]}...)"))
    problems = []
    if got["xscale"] != "log":
        problems.append(say(f"x 軸是 {got['xscale']} 刻度，應為 log", f"the x axis is {got['xscale']}, not log"))
    if not got["xlabel"].strip() or not got["ylabel"].strip():
        problems.append(say("兩個軸都要有標籤", "both axes need a label"))
    unnamed = [r["method"] for r in rows if not any(r["method"] in t for t in got["texts"])]
    if unnamed:
        problems.append(say(f"這些點沒有標上方法名稱：{unnamed[:3]}", f"these points are not labelled with their method: {unnamed[:3]}"))
    assert not problems, "; ".join(problems)
