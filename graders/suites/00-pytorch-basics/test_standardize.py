"""standardize(x): zero mean and unit population variance along the last dimension."""
import pytest
import torch

from graders.plugin import say

TITLE = {"zh": "standardize：沿最後一維標準化", "en": "standardize along the last dimension"}


@pytest.mark.check(points=1, cell="test-standardize", title=TITLE,
                   hint={"zh": "用 x.mean(dim=-1, keepdim=True) 保留維度以便 broadcasting。",
                         "en": "Use x.mean(dim=-1, keepdim=True) so the result broadcasts."})
def test_shape_and_zero_mean(submission, rng):
    x = torch.randn(3, 7, generator=rng) * 5 + 2
    y = submission.call("standardize", x)
    assert tuple(y.shape) == tuple(x.shape), say(f"輸出形狀應為 {tuple(x.shape)}，實際 {tuple(y.shape)}。",
                                                 f"Expected shape {tuple(x.shape)}, got {tuple(y.shape)}.")
    worst = y.mean(dim=-1).abs().max().item()
    assert worst < 1e-4, say(f"每一列的平均應為 0，最大偏差 {worst:.2e}。", f"Row means should be 0; worst is {worst:.2e}.")


@pytest.mark.check(points=2, cell="test-standardize", visibility="hidden",
                   title={"zh": "standardize 與參考解答一致", "en": "standardize matches the reference"},
                   hint={"zh": "變異數用母體公式（unbiased=False），eps 加在開根號之前。",
                         "en": "Use the population variance (unbiased=False) and add eps inside the square root."})
def test_matches_reference(submission, reference, rng):
    for shape, eps in (((2, 5, 9), 1e-5), ((4, 3), 0.5)):
        x = torch.randn(*shape, generator=rng) * 3
        got = submission.call("standardize", x, eps=eps)
        want = reference.call("standardize", x, eps=eps)
        assert torch.allclose(got, want, atol=1e-5, rtol=1e-4)
