"""04-merge-and-deploy: the merge formula on grader inputs, and the merged model equals the unmerged adapter."""
import pytest
import torch

from graders.plugin import say
from graders.plugin.outcomes import Diagnosed
from graders.suites import peft_tester
from graders.suites.artifacts import copy_safe, probe_ids
from graders.suites.peft_tester import PeftCase, base_model, load_adapter

NB = "04-merge-and-deploy"
IA3 = PeftCase(family="llama", method="ia3", notebook="02-train", adapter="artifacts/ia3-adapter")


@pytest.mark.check(points=3, cell="test-merge", title={"zh": "merge_ia3_weight：列（輸出）或行（輸入）乘上 l", "en": "merge_ia3_weight: rows (output) or columns (input) scaled by l"},
                   hint={"zh": "keys/values：W * l[:, None]；feed-forward：W * l[None, :]。", "en": "keys/values: W * l[:, None]; feed-forward: W * l[None, :]."},
                   visibility="hidden")
def test_weight_formula(submission, rng):
    d = int(torch.randint(5, 12, (1,), generator=rng))
    # Square first (a swapped side still has the right shape, so it is told apart), then (out, in) as k_proj under GQA.
    shapes = [(d, d), (d, d + int(torch.randint(1, 6, (1,), generator=rng)))]
    for (d_out, d_in), feedforward in ((shape, ff) for shape in shapes for ff in (False, True)):
        W = torch.randn(d_out, d_in, generator=rng)
        l_vec = torch.rand(d_in if feedforward else d_out, generator=rng) + 0.5
        want = W * (l_vec.reshape(1, -1) if feedforward else l_vec.reshape(-1, 1))
        got = submission.nb(NB).call("merge_on", W, l_vec, feedforward)
        if tuple(got.shape) == tuple(want.shape) and torch.allclose(got, want, atol=1e-6, rtol=1e-5):
            continue
        swapped = W * (l_vec.reshape(-1, 1) if feedforward else l_vec.reshape(1, -1)) if d_out == d_in else None
        if swapped is not None and torch.allclose(got, swapped, atol=1e-6, rtol=1e-5):
            raise Diagnosed(say(f"{'feed-forward' if feedforward else 'keys/values'} 乘錯了邊："
                                f"{'縮放輸入要乘在每一行（W * l[None, :]）' if feedforward else '縮放輸出要乘在每一列（W * l[:, None]）'}。",
                                f"{'feed-forward' if feedforward else 'keys/values'} scaled on the wrong side: "
                                f"{'an input scaling multiplies columns (W * l[None, :])' if feedforward else 'an output scaling multiplies rows (W * l[:, None])'}."))
        raise Diagnosed(say(f"W 的形狀 {(d_out, d_in)}、feedforward={feedforward}：合併後的權重與 "
                            f"{'W·diag(l)' if feedforward else 'diag(l)·W'} 不同（應為形狀 {(d_out, d_in)}，實際 {tuple(got.shape)}）。",
                            f"W of shape {(d_out, d_in)}, feedforward={feedforward}: the merged weight differs from "
                            f"{'W diag(l)' if feedforward else 'diag(l) W'} (shape {(d_out, d_in)} expected, got {tuple(got.shape)})."))


@pytest.mark.check(points=4, cell="test-merge", title={"zh": "合併後的模型等於未合併的 adapter", "en": "the merged model equals the unmerged adapter"},
                   hint={"zh": "合併進 base 權重後 unload()，存成 safetensors；用 AutoModelForCausalLM 就能載入。",
                         "en": "Merge into the base weights, unload(), save as safetensors; it loads with AutoModelForCausalLM."})
def test_merged_equals_unmerged(submission, assignment, profile, grader_tmp):
    from transformers import AutoModelForCausalLM

    folder = copy_safe(submission.nb(NB).artifact_path("artifacts/merged"), grader_tmp / "merged")
    try:
        merged = AutoModelForCausalLM.from_pretrained(folder, use_safetensors=True).eval()
    except Exception as err:
        raise AssertionError(say(f"合併後的模型無法用 AutoModelForCausalLM 載入：{type(err).__name__}",
                                 f"The merged model does not load with AutoModelForCausalLM: {type(err).__name__}")) from None
    left = [n for n, _ in merged.named_parameters() if "ia3" in n]
    assert not left, say(f"合併後仍有 IA3 參數：{left[:2]}", f"IA3 parameters remain after merging: {left[:2]}")
    adapter = submission.nb("02-train").artifact_path(IA3.adapter)
    method = peft_tester.saved_json(adapter, "adapter_config.json", grader_tmp).get("peft_type")
    assert method == "IA3", say(f"你的 adapter 是 {method!r}，不是 IA3：04 只合併 IA3 向量，其他方法的權重沒有進入合併後的模型。",
                                f"Your adapter is {method!r}, not IA3: 04 merges IA3 vectors only, so the other "
                                "method's weights never reach the merged model.")
    unmerged = load_adapter(adapter, base_model(IA3, profile), grader_tmp)
    peft_tester.require_merged_equal(merged, unmerged, probe_ids(profile), assignment.settings["targets"]["merge_rtol"])
