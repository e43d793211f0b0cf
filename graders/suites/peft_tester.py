"""The checks every PEFT lab shares, driven by one table row per (model family, method, config).

A lab describes what it trains with a ``PeftCase`` and calls these functions from its own thin,
marked checks (points, cell, zh/en title and hint stay in the lab's suite, where the lab's
notebook cells are). Everything here is computed in the grader, on models the grader builds:

- ``base_model(case, profile)``: the profile's base model (the trusted fixture).
- ``load_adapter(folder, base, tmp)``: a saved adapter copied safely (JSON/safetensors only) and
  loaded onto a fresh base.
- ``expected_trainable(case, profile, config, unfreeze)``: the trainable count of a peft config
  on a model the grader builds; the lab compares it with the student's counting function called
  on the same, grader-chosen description (``count_diagnosis`` names the usual mistakes).
- ``frozen_base(model)``: names of non-adapter parameters that still require grad.
- ``held_out_loss(model, case, profile)``: the mean response-token loss on the dataset's held-out
  split (never seen by pretraining or by the notebook's training): learning is judged from the
  saved artifact, never from numbers the notebook wrote about itself; ``require_learned`` fails a
  check whose adapter lowers it by less than a fraction of the reference adapter's drop.
- ``logits_gap(a, b, ids)``, ``require_merged_equal(merged, unmerged, ids, rtol)``: reload and merge equivalence.
- ``padding_gap(model, tokenizer, prompts)``: a right-padded batch against each row alone.

Adding a PEFT lab (for example 05-ia3 on the tiny Llama):
1. add a row: ``IA3 = PeftCase(family="llama", method="ia3", notebook="02-train",
   adapter="artifacts/ia3-adapter", dataset="instructions")``;
2. in the lab's suite write one marked check per shared behaviour, each a few lines calling the
   functions above with that row (copy 01-lora's ``test_training.py`` and change the row);
3. add the method-specific checks (IA3: ones-vectors equal the base; prefix tuning: key/value
   shapes per layer) beside them; 4. give each wrong answer a mutant under ``assignments/<a>/mutants``.
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import torch

from graders.plugin import say
from graders.suites.artifacts import copy_safe


@dataclass(frozen=True)
class PeftCase:
    family: str  # common_utils.models family
    method: str  # peft method name, e.g. "lora"
    notebook: str  # the notebook that trains and saves the adapter
    adapter: str  # the adapter folder, relative to the scratch folder
    dataset: str = "instructions"  # common_utils.datasets name; its held-out split judges learning
    template: str = "alpaca"
    max_held_out: int = 64  # rows of the held-out split evaluated (a few CPU seconds on tiny)


def base_model(case: PeftCase, profile: str):
    from common_utils.models import load_model

    return load_model(case.family, profile).eval()


def load_adapter(folder: Path, base, tmp: Path):
    """The adapter in ``folder`` on ``base``, loaded from a safe copy in the grader's ``tmp``."""
    from peft import PeftModel

    safe = copy_safe(folder, tmp / f"adapter-{len(list(tmp.iterdir())) if tmp.exists() else 0}")
    if not (safe / "adapter_model.safetensors").is_file():
        raise AssertionError(say("adapter 沒有 adapter_model.safetensors：請用 save_pretrained 存成 safetensors。",
                                 "The adapter has no adapter_model.safetensors: save it with save_pretrained."))
    try:
        return PeftModel.from_pretrained(base, str(safe)).eval()
    except (KeyError, ValueError, RuntimeError, TypeError) as err:  # a student's folder peft cannot read
        raise AssertionError(say(f"peft 無法載入這個 adapter（{type(err).__name__}: {err}）：請用 save_pretrained 存下訓練好的模型。",
                                 f"peft cannot load this adapter ({type(err).__name__}: {err}): save the trained model with "
                                 "save_pretrained.")) from None


def expected_trainable(case: PeftCase, profile: str, config, unfreeze: list[str]) -> tuple[int, int]:
    """(trainable, total) of ``config`` on a fresh base, with the parameters named in ``unfreeze`` trainable too."""
    from peft import get_peft_model

    model = get_peft_model(base_model(case, profile), config)
    for name, p in model.named_parameters():
        if any(u in name for u in unfreeze):
            p.requires_grad_(True)
    trainable = sum(p.numel() for p in model.parameters() if p.requires_grad)
    adapter_only = sum(p.numel() for n, p in model.named_parameters() if "lora_" in n)
    return trainable, sum(p.numel() for p in model.parameters()), adapter_only


def count_diagnosis(got: tuple[int, int], want: tuple[int, int, int]) -> str | None:
    """None when right; else a zh/en sentence naming the likely mistake, with the numbers."""
    trainable, total, adapter_only = want
    if tuple(got) == (trainable, total):
        return None
    g_trainable, g_total = got
    numbers = say(f"預期 (可訓練, 全部) = ({trainable:,}, {total:,})，實際 ({g_trainable:,}, {g_total:,})",
                  f"expected (trainable, total) = ({trainable:,}, {total:,}), got ({g_trainable:,}, {g_total:,})")
    if g_trainable == g_total:
        why = say("可訓練數等於全部參數：是否沒有檢查 requires_grad？", "trainable equals total: is requires_grad ignored?")
    elif g_trainable == adapter_only and trainable != adapter_only:
        why = say("只數了名稱含 lora_ 的參數：其他 requires_grad 的參數也要算。",
                  "only parameters named lora_ were counted: every parameter that requires grad counts.")
    elif g_total == total - trainable:
        why = say("全部參數少算了可訓練的部分。", "the total leaves out the trainable parameters.")
    else:
        why = say("請用 p.numel() 加總 requires_grad 的參數。", "sum p.numel() over parameters that require grad.")
    return f"{numbers}：{why}" if say("zh", "en") == "zh" else f"{numbers}: {why}"


def frozen_base(model) -> list[str]:
    """Names of base (non-adapter) parameters that require grad."""
    return [n for n, p in model.named_parameters() if p.requires_grad and "lora_" not in n]


def held_out_batches(case: PeftCase, profile: str, batch_size: int = 16) -> list[dict]:
    from common_utils.datasets import load_course_dataset
    from common_utils.instruct import InstructionDataCollator, InstructionDataset
    from common_utils.models import load_tokenizer

    tok = load_tokenizer(profile, case.family)
    rows = load_course_dataset(case.dataset, profile, split="held_out")[: case.max_held_out]
    ds = InstructionDataset(rows, tok, template=case.template, max_length=128)
    collate = InstructionDataCollator(tok)
    return [collate([ds[j] for j in range(i, min(i + batch_size, len(ds)))]) for i in range(0, len(ds), batch_size)]


def held_out_loss(model, case: PeftCase, profile: str) -> float:
    """Mean response-token cross-entropy on the held-out rows (prompt tokens masked)."""
    total, count = 0.0, 0
    model.eval()
    with torch.no_grad():
        for batch in held_out_batches(case, profile):
            n = int((batch["labels"][:, 1:] != -100).sum())
            total += float(model(**{k: v.to(model.device) for k, v in batch.items()}).loss) * n
            count += n
    return total / max(count, 1)


def require_learned(case: PeftCase, profile: str, mine: Path, ref: Path, fraction: float, tmp: Path) -> None:
    """The adapter in ``mine`` lowers the held-out loss by at least ``fraction`` of what the reference's
    adapter in ``ref`` lowers it, both loaded by the grader on fresh bases of the same profile."""
    base_loss = held_out_loss(base_model(case, profile), case, profile)
    got, ref_drop = (base_loss - held_out_loss(load_adapter(folder, base_model(case, profile), tmp), case, profile)
                     for folder in (mine, ref))
    want = fraction * ref_drop
    assert got >= want, say(
        f"在 held-out 資料上，adapter 讓 loss 從 {base_loss:.3f} 下降 {got:.3f}；目標至少 {want:.3f}（參考解答下降量的 {fraction}×）。",
        f"On held-out rows the adapter lowers the loss from {base_loss:.3f} by {got:.3f}; the target is at least "
        f"{want:.3f} ({fraction}x the reference's drop).")


def logits_gap(a, b, ids: torch.Tensor) -> float:
    """max |a - b| / max |b| over the logits of ``ids``."""
    with torch.no_grad():
        la, lb = a(input_ids=ids.to(a.device)).logits.float().cpu(), b(input_ids=ids.to(b.device)).logits.float().cpu()
    return ((la - lb).abs().max() / lb.abs().max()).item()


def require_merged_equal(merged, unmerged, ids: torch.Tensor, rtol: float) -> None:
    """The merged model's logits on ``ids`` equal the unmerged adapter's within ``rtol`` (``logits_gap``)."""
    gap = logits_gap(merged, unmerged, ids)
    assert gap <= rtol, say(f"合併後與未合併（adapter 載在新的 base 上）的 logits 相對差 {gap:.2e}，應 ≤ {rtol}："
                            "合併的公式、以及合併進的是不是訓練時那個全精度 base？",
                            f"Merged and unmerged (the adapter on a fresh base) logits differ by {gap:.2e} relative; the bound "
                            f"is {rtol}: check the merge formula, and that the base merged into is the full-precision one trained.")


def padding_gap(generate_batch, prompts: list[str], generate_one) -> list[int]:
    """Indices of prompts whose batched answer differs from the answer alone."""
    batched = generate_batch(prompts)
    return [i for i, p in enumerate(prompts) if batched[i] != generate_one(p)]


# Course-written methods (BitFit, bottleneck adapters) save plain tensors, not a peft adapter.
def saved_tensors(folder: Path, filename: str, tmp: Path) -> dict:
    """The tensors of ``folder/filename`` (safetensors), read from a safe copy in the grader's ``tmp``."""
    from safetensors.torch import load_file

    safe = copy_safe(folder, tmp / f"tensors-{len(list(tmp.iterdir())) if tmp.exists() else 0}")
    if not (safe / filename).is_file():
        raise AssertionError(say(f"{folder.name}/ 裡沒有 {filename}：請用 safetensors 存下可訓練的參數。",
                                 f"{folder.name}/ holds no {filename}: save the trainable parameters with safetensors."))
    return load_file(safe / filename)


def load_tensors_into(model, tensors: dict):
    """``model`` with ``tensors`` copied in by name; names the model does not have are refused by name."""
    result = model.load_state_dict(tensors, strict=False)
    if result.unexpected_keys:
        raise AssertionError(say(f"存下的張量有模型沒有的名稱（是這個方法的參數嗎？）：{result.unexpected_keys[:3]}",
                                 f"The saved tensors have names the model lacks (are they this method's parameters?): "
                                 f"{result.unexpected_keys[:3]}"))
    return model.eval()


def saved_json(folder: Path, filename: str, tmp: Path) -> dict:
    """A JSON object the notebook saved beside its tensors (e.g. the adapter's configuration)."""
    import json

    safe = copy_safe(folder, tmp / f"json-{len(list(tmp.iterdir())) if tmp.exists() else 0}")
    if not (safe / filename).is_file():
        raise AssertionError(say(f"{folder.name}/ 沒有 {filename}。", f"{folder.name}/ has no {filename}."))
    got = json.loads((safe / filename).read_text(encoding="utf-8"))
    if not isinstance(got, dict):
        raise AssertionError(say(f"{filename} 應是一個 JSON 物件。", f"{filename} should hold a JSON object."))
    return got


def bottleneck_model(folder: Path, profile: str, tmp: Path, family: str = "bert"):
    """A fresh base with the course's bottleneck adapters placed as ``folder/adapter_config.json`` says and
    ``folder/adapters.safetensors`` copied in: the grader's own loading of a student's adapters."""
    from common_utils.adapters.bottleneck import BottleneckConfig, add_bottleneck_adapters
    from common_utils.models import load_model

    settings = saved_json(folder, "adapter_config.json", tmp)
    try:
        config = BottleneckConfig(**{k: settings[k] for k in ("placement", "bottleneck_size", "activation")})
    except (KeyError, TypeError, ValueError) as err:
        raise AssertionError(say(f"adapter_config.json 無法建出 BottleneckConfig：{err}",
                                 f"adapter_config.json does not make a BottleneckConfig: {err}")) from None
    tensors = saved_tensors(folder, "adapters.safetensors", tmp)
    return load_tensors_into(add_bottleneck_adapters(load_model(family, profile), config), tensors)


def served_diagnosis(got: torch.Tensor, want: torch.Tensor, requests: list) -> str | None:
    """None when every request of a multi-task server matches its task loaded alone; else a zh/en sentence."""
    if tuple(got.shape) != tuple(want.shape):
        return say(f"serve 應回傳形狀 {tuple(want.shape)} 的 logits，實際 {tuple(got.shape)}。",
                   f"serve should return logits of shape {tuple(want.shape)}; got {tuple(got.shape)}.")
    bad = [i for i in range(len(requests)) if not torch.allclose(got[i], want[i], atol=1e-4, rtol=1e-4)]
    if not bad:
        return None
    i = bad[0]
    if any(torch.allclose(got[i], want[j], atol=1e-4, rtol=1e-4) for j in range(len(requests)) if j != i):
        return say(f"第 {i} 個請求拿到了另一個請求的結果：輸出順序要與 requests 相同，且每個任務要換上自己的參數。",
                   f"Request {i} got another request's result: keep the order of the requests, and load each task's own "
                   "parameters.")
    return say(f"第 {i} 個請求（任務 {requests[i][0]}）與「只載入這個任務」的結果不同：換上任務前，先前任務留下的值是否還原了？",
               f"Request {i} (task {requests[i][0]}) differs from that task loaded alone: are the values an earlier task "
               "left behind restored before a task is loaded?")


def require_served(got: torch.Tensor, want: torch.Tensor, requests: list) -> None:
    """Fail the check with ``served_diagnosis``'s sentence as its message."""
    from graders.plugin.outcomes import Diagnosed

    sentence = served_diagnosis(got, want, requests)
    if sentence is not None:
        raise Diagnosed(sentence)


def require_generations(notebook, relpath: str = "artifacts/generations.json") -> None:
    """The inference notebook saved one base and one adapted string per prompt."""
    from graders.suites.artifacts import read_json_artifact

    saved = read_json_artifact(notebook, relpath)
    prompts = saved.get("prompts", [])
    complete = all(isinstance(saved.get(side), list) and len(saved[side]) == len(prompts)
                   and all(isinstance(text, str) for text in saved[side]) for side in ("base", "adapted"))
    assert prompts and complete, say("generations.json 的 base、adapted 應各有一個字串對應每個 prompt。",
                                     "generations.json should hold one base and one adapted string per prompt.")


def require_reload(adapted_logits, folder: Path, base, tmp: Path, profile: str) -> None:
    """The saved adapter, loaded by the grader on ``base``, gives the logits of the student's
    trained model: ``adapted_logits(ids)``, the suite's call through its declared seam."""
    from graders.suites.artifacts import probe_ids

    ids = probe_ids(profile)
    reloaded = load_adapter(folder, base, tmp)
    with torch.no_grad():
        want = reloaded(input_ids=ids.to(reloaded.device)).logits.float().cpu()
    require_same_logits(adapted_logits(ids), want)


# Prompt-learning adapters on a classifier (07 P-tuning, 08 P-tuning v2). The saved configuration is
# judged as data by its own check; the other checks load the adapter through ``load_prompt_adapter``,
# which refuses another method by name but reads past extra keys or another task type, so a
# student whose only mistake is the configuration file still scores for the rest.
def config_differences(got: dict, want: dict, known: set[str]) -> list[str]:
    """zh/en phrases naming each field of ``want`` that ``got`` lacks or changes, and keys nobody knows."""
    diffs = [say(f"{k}={got.get(k)!r}，應為 {v!r}", f"{k}={got.get(k)!r}, expected {v!r}") for k, v in want.items()
             if got.get(k) != v]
    extra = sorted(set(got) - known)
    if extra:
        diffs.append(say(f"多了不認得的設定 {extra}", f"unknown extra keys {extra}"))
    return diffs


def saved_config(folder: Path, tmp: Path) -> tuple[dict, Path]:
    """The adapter's adapter_config.json (a JSON object) and the safe copy it was read from."""
    safe = copy_safe(folder, tmp / f"config-{len(list(tmp.iterdir())) if tmp.exists() else 0}")
    return saved_json(safe, "adapter_config.json", tmp), safe


def load_prompt_adapter(folder: Path, base, tmp: Path, peft_type: str, task_type: str = "SEQ_CLS"):
    """The adapter in ``folder`` on ``base`` as the lab's method; another method is refused by name."""
    import json

    from peft import PeftModel
    from peft.mapping import PEFT_TYPE_TO_CONFIG_MAPPING

    from graders.plugin.outcomes import Diagnosed

    config, safe = saved_config(folder, tmp)
    if config.get("peft_type") != peft_type:
        raise Diagnosed(say(f"存下的 adapter 是 {config.get('peft_type')!r}，不是這個作業的 {peft_type}：無法當成 {peft_type} 評分。",
                            f"The saved adapter is {config.get('peft_type')!r}, not this lab's {peft_type}: it cannot be "
                            f"graded as {peft_type}."))
    known = set(PEFT_TYPE_TO_CONFIG_MAPPING[peft_type]().to_dict())
    cleaned = {k: v for k, v in config.items() if k in known} | {"task_type": task_type}
    (safe / "adapter_config.json").write_text(json.dumps(cleaned))
    if not (safe / "adapter_model.safetensors").is_file():
        raise AssertionError(say("adapter 沒有 adapter_model.safetensors：請用 save_pretrained 存成 safetensors。",
                                 "The adapter has no adapter_model.safetensors: save it with save_pretrained."))
    return PeftModel.from_pretrained(base, str(safe)).eval()


def make_prompt_adapter(config, profile: str, rng: torch.Generator, folder: Path, family: str = "bert") -> Path:
    """An adapter the grader makes: ``config`` on a fresh base, every trainable tensor (prompt encoder
    and head) moved by noise drawn from ``rng``, saved with peft to ``folder``."""
    from peft import get_peft_model

    model = get_peft_model(base_model(PeftCase(family, "", "", ""), profile), config)
    with torch.no_grad():
        for p in model.parameters():
            if p.requires_grad:
                p.add_(torch.randn(p.shape, generator=rng) * max(float(p.std()) if p.numel() > 1 else 0.0, 0.5))
    model.save_pretrained(str(folder))
    return folder


def classify_alone(model, tokenizer, texts: list[str]) -> torch.Tensor:
    """Each text's logits, one at a time (no padding): what a batched answer must equal."""
    rows = []
    with torch.no_grad():
        for text in texts:
            enc = tokenizer([text], truncation=True, max_length=64, return_tensors="pt")
            out = model(input_ids=enc["input_ids"].to(model.device), attention_mask=enc["attention_mask"].to(model.device))
            rows.append(out.logits[0].float().cpu())
    return torch.stack(rows)


def classification_loss(model, batch: dict) -> float:
    """Cross-entropy of a classifier on ``batch`` (input_ids, attention_mask, labels)."""
    with torch.no_grad():
        logits = model.eval()(input_ids=batch["input_ids"].to(model.device),
                              attention_mask=batch["attention_mask"].to(model.device)).logits
    return float(torch.nn.functional.cross_entropy(logits.float().cpu(), batch["labels"]))


def require_classifier_learned(untrained, mine, ref, batch: dict, fraction: float) -> None:
    """``mine`` lowers the held-out loss of ``untrained`` by at least ``fraction`` of what ``ref`` lowers it."""
    start = classification_loss(untrained, batch)
    got, ref_drop = start - classification_loss(mine, batch), start - classification_loss(ref, batch)
    want = fraction * ref_drop
    assert got >= want, say(
        f"在 held-out 句子上，未訓練的 adapter loss 為 {start:.3f}；你的 adapter 讓它下降 {got:.3f}，"
        f"目標至少 {want:.3f}（參考解答下降量 {ref_drop:.3f} 的 {fraction}×）。",
        f"On held-out rows the untrained adapter's loss is {start:.3f}; yours lowers it by {got:.3f}; the target is at "
        f"least {want:.3f} ({fraction}x the reference's drop of {ref_drop:.3f}).")


def require_same_logits(got: torch.Tensor, want: torch.Tensor) -> None:
    """The student's trained model and the grader's reload of its adapter give the same logits."""
    same = tuple(got.shape) == tuple(want.shape) and torch.allclose(got, want, atol=1e-5, rtol=1e-4)
    gap = float((got - want).abs().max()) if tuple(got.shape) == tuple(want.shape) else float("nan")
    assert same, say(f"重新載入的 adapter 與訓練完的模型輸出不同（形狀 {tuple(got.shape)} vs {tuple(want.shape)}，最多差 {gap:.3g}）："
                     "存的是訓練好的那個模型嗎？",
                     f"The reloaded adapter and the trained model disagree (shapes {tuple(got.shape)} vs {tuple(want.shape)}, "
                     f"largest difference {gap:.3g}): was the trained model saved?")


def untrained_like(folder: Path, case: PeftCase, profile: str, tmp: Path):
    """A fresh, untrained adapter of the configuration saved in ``folder`` (seeded): where learning starts."""
    from peft import PeftConfig, get_peft_model

    _, safe = saved_config(folder, tmp)
    config = PeftConfig.from_pretrained(str(safe))
    config.inference_mode = False
    torch.manual_seed(0)
    return get_peft_model(base_model(case, profile), config).eval()


def held_out_classification(case: PeftCase, profile: str, text: list[str], rows: int | None = None,
                            rng: torch.Generator | None = None) -> dict:
    """One padded batch of the case's held-out split: every row, or ``rows`` of them drawn with ``rng``."""
    from common_utils.datasets import load_course_dataset
    from common_utils.models import load_tokenizer
    from common_utils.training import sentence_batches

    held = load_course_dataset(case.dataset, profile, split="held_out")
    if rows is not None:
        held = [held[int(i)] for i in torch.randperm(len(held), generator=rng)[:rows]]
    return sentence_batches(held, load_tokenizer(profile, family=case.family), len(held), text=text)[0]


def texts_of(dataset: str, profile: str, rng: torch.Generator, count: int) -> list[str]:
    """``count`` held-out texts of different lengths, the shortest and the longest among them (a padded batch)."""
    from common_utils.datasets import load_course_dataset

    texts = sorted({r["text"] for r in load_course_dataset(dataset, profile, split="held_out")}, key=len)
    picks = torch.randperm(len(texts) - 2, generator=rng)[: count - 2].add(1).tolist()
    return [texts[0], *(texts[i] for i in picks), texts[-1]]


# The checks themselves, one call each from a lab's marked check (07 and 08 share every one).
def require_prompt_config(mine: Path, tmp: Path, config_cls, peft_type: str, num_virtual_tokens: int) -> None:
    """The saved configuration is ``peft_type`` for SEQ_CLS with ``num_virtual_tokens`` and no key that peft
    does not write itself; partial credit for the fields that are right, with the differences named."""
    import json

    from graders.plugin.outcomes import PartialCredit

    got, _ = saved_config(mine, tmp)
    written = tmp / f"peft-written-{len(list(tmp.iterdir()))}"
    config_cls(task_type="SEQ_CLS").save_pretrained(str(written))  # what peft itself writes (peft_version too)
    known = set(json.loads((written / "adapter_config.json").read_text()))
    fields = {"peft_type": peft_type, "task_type": "SEQ_CLS", "num_virtual_tokens": num_virtual_tokens}
    diffs = config_differences(got, fields, known)
    if diffs:
        right = len(fields) + 1 - len(diffs)
        raise PartialCredit(max(right, 0) / (len(fields) + 1), say("adapter_config.json 與規格不同：",
                            "adapter_config.json differs from the specification: ") + "; ".join(diffs))


def require_head_trainable_base_frozen(names: list[str]) -> None:
    """Of a SEQ_CLS prompt-learning model's trainable ``names``: the prompt encoder and the head's
    modules_to_save copy train, no base parameter does."""
    from graders.plugin.outcomes import Diagnosed

    encoder = [n for n in names if n.startswith("prompt_encoder.")]
    head = [n for n in names if "classifier" in n and ".modules_to_save." in n]
    base = sorted(set(names) - set(encoder) - set(head))
    problems = []
    if base:
        problems.append(say(f"BERT 有 {len(base)} 個參數沒有凍結（例如 {base[:2]}）。",
                            f"{len(base)} BERT parameters are not frozen (e.g. {base[:2]})."))
    if not head:
        problems.append(say("分類頭被凍結了：它是隨機初始化的，凍結後模型學不會（原本課程教材的錯誤）。",
                            "The head is frozen: it is freshly initialised, so frozen it cannot learn (the original course's defect)."))
    if not encoder:
        problems.append(say("prompt encoder 沒有可訓練的參數。", "The prompt encoder has no trainable parameter."))
    if problems:
        raise Diagnosed(" ".join(problems))


def require_prompt_adapter_learned(case: PeftCase, profile: str, mine: Path, ref: Path, tmp: Path, peft_type: str,
                                   text: list[str], fraction: float) -> None:
    """Held-out loss: the student's adapter against a fresh one of the reference's configuration, as a
    fraction of the reference adapter's drop; every model built and loaded by the grader."""
    untrained = untrained_like(ref, case, profile, tmp)
    got, want = (load_prompt_adapter(folder, base_model(case, profile), tmp, peft_type) for folder in (mine, ref))
    require_classifier_learned(untrained, got, want, held_out_classification(case, profile, text), fraction)


def require_prompt_adapter_reloads(case: PeftCase, profile: str, folder: Path, adapted_logits, tmp: Path, peft_type: str,
                                   text: list[str], rng: torch.Generator) -> None:
    """The adapter the notebook saved in ``folder``, reloaded by the grader, gives the trained model's logits
    on held-out rows the grader draws: ``adapted_logits(input_ids, attention_mask)``, the lab's seam call."""
    reloaded = load_prompt_adapter(folder, base_model(case, profile), tmp, peft_type)
    batch = held_out_classification(case, profile, text, rows=4, rng=rng)
    with torch.no_grad():
        want = reloaded(input_ids=batch["input_ids"].to(reloaded.device),
                        attention_mask=batch["attention_mask"].to(reloaded.device)).logits.float().cpu()
    require_same_logits(adapted_logits(batch["input_ids"], batch["attention_mask"]).float().cpu(), want)


def _peft_alone(folder: Path, profile: str, texts: list[str], family: str = "bert") -> torch.Tensor:
    from peft import PeftModel

    from common_utils.models import load_model, load_tokenizer

    model = PeftModel.from_pretrained(load_model(family, profile), str(folder)).eval()
    return classify_alone(model, load_tokenizer(profile, family=family), texts)


def require_adapter_logits(logits_on, put, config, profile: str, rng: torch.Generator, tmp: Path, dataset: str) -> None:
    """``logits_on(folder, texts)`` (the lab's seam call) on an adapter the grader makes from ``config``, handed
    over with ``put`` (``submission.put``), and texts of different lengths: each row equals its text alone
    through peft (padding masked)."""
    from common_utils.models import load_model, load_tokenizer
    from graders.plugin.outcomes import Diagnosed

    folder = make_prompt_adapter(config, profile, rng, tmp / "made")
    texts = texts_of(dataset, profile, rng, 5)
    want = _peft_alone(folder, profile, texts)
    got = logits_on(put(folder, "grader-adapters/made"), texts).float()
    if tuple(got.shape) != tuple(want.shape):
        raise Diagnosed(say(f"logits 形狀應為 (len(texts), num_labels) = {tuple(want.shape)}，實際 {tuple(got.shape)}。",
                            f"The logits should have shape (len(texts), num_labels) = {tuple(want.shape)}; got {tuple(got.shape)}."))
    if torch.allclose(got, want, atol=1e-4, rtol=1e-4):
        return
    base = classify_alone(load_model("bert", profile).eval(), load_tokenizer(profile, family="bert"), texts)
    if torch.allclose(got, base, atol=1e-4, rtol=1e-4):
        raise Diagnosed(say("輸出等於沒有 adapter 的 base：adapter 有載入嗎？",
                            "The output equals the base without the adapter: was the adapter loaded?"))
    alone = [i for i in range(len(texts)) if torch.allclose(got[i], want[i], atol=1e-4, rtol=1e-4)]
    if alone:
        raise Diagnosed(say(f"只有第 {alone} 句正確：有 padding 的句子錯了，attention_mask 有傳入嗎？",
                            f"Only rows {alone} are right: the padded rows are wrong; was the attention_mask passed?"))
    raise Diagnosed(say(f"logits 與 grader 自己載入的結果最多差 {(got - want).abs().max().item():.3g}。",
                        f"The logits differ from the grader's own loading by up to {(got - want).abs().max().item():.3g}."))


def require_adapters_served(serve_requests, put, draw_config, profile: str, rng: torch.Generator, tmp: Path,
                            dataset: str) -> None:
    """``serve_requests(adapters, requests)`` (the lab's seam call) with two or three adapters the grader makes
    (``draw_config(rng)``, handed over with ``put``) on interleaved requests: each row equals its adapter alone."""
    names = ["alpha", "beta", "gamma"][: int(torch.randint(2, 4, (1,), generator=rng))]
    folders = {name: make_prompt_adapter(draw_config(rng), profile, rng, tmp / name) for name in names}
    texts = texts_of(dataset, profile, rng, 3)
    order = [*names, names[-1], names[0], *names[1:]]  # interleaved: a server that never switches shows
    requests = [[name, texts[i % len(texts)]] for i, name in enumerate(order)]
    want = torch.stack([_peft_alone(folders[name], profile, [text])[0] for name, text in requests])
    paths = {name: put(folder, f"grader-adapters/{name}") for name, folder in folders.items()}
    require_served(serve_requests(paths, requests).float(), want, requests)


# Prompt encoders written from scratch (07's PromptEncoder, 08's PrefixEncoder) against peft's own.
def encoder_rows(n: int, rng: torch.Generator) -> torch.Tensor:
    """Two rows of virtual-token positions: in order (what peft feeds), and a shuffle of them."""
    return torch.stack([torch.arange(n), torch.randperm(n, generator=rng)])


def draw_weights(module, rng: torch.Generator, scale: float = 0.5):
    """``module`` in eval mode with every parameter drawn from ``rng`` (the grader's weights)."""
    with torch.no_grad():
        for p in module.parameters():
            p.copy_(torch.randn(p.shape, generator=rng) * scale)
    return module.eval()


def require_encoder_shape_and_count(got: dict, want_shape: tuple, want_count: int, what: str, shape_name: str) -> None:
    """A from-scratch encoder's ``{"output", "trainable"}`` (its seam's answer) has peft's output shape
    ``want_shape`` (named ``shape_name``) and peft's parameter count; ``what`` names the variant and sizes."""
    from graders.plugin.outcomes import Diagnosed

    shape = tuple(got["output"].shape)
    if shape != tuple(want_shape):
        raise Diagnosed(say(f"{what}：輸出形狀應為 {shape_name} = {tuple(want_shape)}，實際 {shape}。",
                            f"{what}: the output should have shape {shape_name} = {tuple(want_shape)}; got {shape}."))
    if int(got["trainable"]) != want_count:
        raise Diagnosed(say(f"{what}：可訓練參數應為 {want_count:,}（與 peft 的相同），實際 {int(got['trainable']):,}。",
                            f"{what}: {want_count:,} trainable parameters expected (as peft's); got {int(got['trainable']):,}."))


def greedy_texts(model, tokenizer, prompts: list[str], max_new_tokens: int) -> list[str]:
    """The grader's own greedy decoding, one prompt at a time: only the new tokens, special tokens skipped."""
    answers = []
    for text in prompts:
        ids = tokenizer(text, return_tensors="pt")["input_ids"].to(model.device)
        with torch.no_grad():
            seq = model.generate(input_ids=ids, attention_mask=torch.ones_like(ids), do_sample=False,
                                 max_new_tokens=max_new_tokens, pad_token_id=tokenizer.pad_token_id)[0]
        answers.append(tokenizer.decode(seq[ids.shape[1]:], skip_special_tokens=True))
    return answers


def served_texts_diagnosis(got: list, alone: dict, requests: list) -> str | None:
    """None when each request of a multi-adapter server got its adapter's text alone (``alone[name][prompt]``);
    else a zh/en sentence naming the requests that differ."""
    want = [alone[name][prompt] for name, prompt in requests]
    if got == want:
        return None
    first = requests[0][0]
    if got == [alone[first][prompt] for _, prompt in requests]:
        return say("每個請求都用了第一個 adapter：切換前要 set_adapter(名字)。",
                   "Every request used the first adapter: call set_adapter(name) before generating.")
    wrong = [i for i, (g, w) in enumerate(zip(got, want)) if g != w] if len(got) == len(want) else list(range(len(want)))
    return say(f"請求 {wrong} 的輸出與該 adapter 單獨載入時不同。", f"Requests {wrong} differ from the output of their adapter loaded alone.")
