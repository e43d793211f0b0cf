"""Parameter counting, recomputed in the grader from the student's own model."""
import pytest

from graders.plugin import say


@pytest.mark.check(points=1, cell="test-param-count",
                   title={"zh": "linear_param_count 的公式", "en": "linear_param_count formula"},
                   hint={"zh": "weight 有 d_in × d_out 個元素，bias 有 d_out 個。",
                         "en": "The weight has d_in × d_out elements, the bias d_out."})
def test_linear_param_count(submission, rng):
    import torch

    d_in, d_out = (int(v) for v in torch.randint(2, 300, (2,), generator=rng))
    got = submission.call("linear_param_count", d_in, d_out)
    want = d_in * d_out + d_out
    assert got == want, say(f"Linear({d_in}, {d_out}) 應有 {want:,} 個參數，實際 {got!r}。",
                            f"Linear({d_in}, {d_out}) has {want:,} parameters; got {got!r}.")


@pytest.mark.check(points=1, cell="test-param-count", visibility="hidden",
                   title={"zh": "沒有 bias 的 Linear", "en": "Linear without bias"},
                   hint={"zh": "bias=False 時不要加上 d_out。", "en": "With bias=False, do not add d_out."})
def test_linear_param_count_without_bias(submission, reference, rng):
    import torch

    d_in, d_out = (int(v) for v in torch.randint(2, 300, (2,), generator=rng))
    assert submission.call("linear_param_count", d_in, d_out, bias=False) == \
        reference.call("linear_param_count", d_in, d_out, bias=False)


@pytest.mark.check(points=2, cell="test-param-count", visibility="hidden",
                   title={"zh": "count_parameters 與可訓練參數", "en": "count_parameters and trainable parameters"},
                   hint={"zh": "加總 p.numel()；trainable_only=True 時只算 p.requires_grad 為 True 的參數。",
                         "en": "Sum p.numel(); with trainable_only=True count only parameters with requires_grad."})
def test_count_matches_model(submission):
    state = submission.value("model")
    total = sum(t.numel() for t in state.values())
    trainable = sum(t.numel() for k, t in state.items() if k.startswith("fc2."))
    n_params, n_trainable = submission.value("n_params"), submission.value("n_trainable")
    assert (n_params, n_trainable) == (total, trainable), say(
        f"預期共 {total:,} 個參數、凍結 fc1 後 {trainable:,} 個可訓練；實際 {n_params!r}、{n_trainable!r}。",
        f"Expected {total:,} parameters and {trainable:,} trainable with fc1 frozen; got {n_params!r}, {n_trainable!r}.")
