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
    got = adapted_logits(ids)
    same = tuple(got.shape) == tuple(want.shape) and torch.allclose(got, want, atol=1e-5, rtol=1e-4)
    gap = float((got - want).abs().max()) if tuple(got.shape) == tuple(want.shape) else float("nan")
    assert same, say(f"重新載入的 adapter 與訓練完的模型輸出不同（形狀 {tuple(got.shape)} vs {tuple(want.shape)}，最多差 {gap:.3g}）："
                     "存的是訓練好的那個模型嗎？",
                     f"The reloaded adapter and the trained model disagree (shapes {tuple(got.shape)} vs {tuple(want.shape)}, "
                     f"largest difference {gap:.3g}): was the trained model saved?")


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
