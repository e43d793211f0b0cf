"""04-distillation: the loss against its closed form on grader inputs, and the distilled student's
held-out accuracy against the teacher's, both models reloaded and evaluated in the grader."""
import pytest
import torch
import torch.nn.functional as F

from graders.plugin import say
from graders.suites.artifacts import copy_safe

NB = "04-distillation"
H_KD = {"zh": "alpha·T²·KL(softmax(z_t/T) ‖ softmax(z_s/T))（batchmean）+ (1-alpha)·CE(z_s, y)。",
        "en": "alpha * T^2 * KL(softmax(z_t/T) || softmax(z_s/T)) (batchmean) + (1 - alpha) * CE(z_s, y)."}


def closed_form(s, t, y, T, alpha):
    """The distillation loss written out: KL summed over classes, averaged over the batch."""
    p_t = F.softmax(t.double() / T, dim=-1)
    kl = (p_t * (p_t.log() - F.log_softmax(s.double() / T, dim=-1))).sum(dim=-1).mean()
    ce = -F.log_softmax(s.double(), dim=-1).gather(1, y[:, None]).mean()
    return float(alpha * T ** 2 * kl + (1 - alpha) * ce)


def _logits(rng, batch=None, classes=None):
    batch = batch or int(torch.randint(3, 9, (1,), generator=rng))
    classes = classes or int(torch.randint(3, 7, (1,), generator=rng))
    return (torch.randn(batch, classes, generator=rng) * 2, torch.randn(batch, classes, generator=rng) * 3,
            torch.randint(0, classes, (batch,), generator=rng))


def _check(submission, s, t, y, T, alpha):
    got = float(submission.nb(NB).call("kd_loss", s, t, y, T, alpha))
    want = closed_form(s, t, y, T, alpha)
    assert abs(got - want) <= 1e-4 * max(1.0, abs(want)), say(
        f"T={T}、alpha={alpha}、batch={s.shape[0]}：loss {got:.6f}，封閉公式 {want:.6f}。",
        f"T={T}, alpha={alpha}, batch={s.shape[0]}: loss {got:.6f}; the closed form gives {want:.6f}.")


@pytest.mark.check(points=1, cell="test-kd-loss", title={"zh": "alpha = 0：只剩 hard-label 的 cross entropy", "en": "alpha = 0: only the hard-label cross entropy"}, hint=H_KD)
def test_hard_label_only(submission, rng):
    _check(submission, *_logits(rng), T=float(torch.rand(1, generator=rng)) * 3 + 1, alpha=0.0)


@pytest.mark.check(points=3, cell="test-kd-loss", title={"zh": "alpha = 1：T²·KL（batchmean）", "en": "alpha = 1: T^2 * KL (batchmean)"}, hint=H_KD,
                   visibility="hidden")
def test_soft_label_only(submission, rng):
    for T, batch in ((1.0, 5), (float(torch.rand(1, generator=rng)) * 3 + 2, 8), (4.0, 3)):
        _check(submission, *_logits(rng, batch=batch), T=T, alpha=1.0)


@pytest.mark.check(points=2, cell="test-kd-loss", title={"zh": "soft 與 hard 兩項的混合", "en": "the mix of the soft and hard terms"}, hint=H_KD,
                   visibility="hidden")
def test_mix(submission, rng):
    for _ in range(2):
        _check(submission, *_logits(rng), T=float(torch.rand(1, generator=rng)) * 4 + 1, alpha=float(torch.rand(1, generator=rng)))


def _classifier(handle, folder, grader_tmp):
    from transformers import AutoModelForSequenceClassification

    safe = copy_safe(handle.artifact_path(folder), grader_tmp / folder.replace("/", "-"))
    if not (safe / "model.safetensors").is_file():
        raise AssertionError(say(f"{folder}/ 沒有 model.safetensors。", f"{folder}/ has no model.safetensors."))
    return AutoModelForSequenceClassification.from_pretrained(str(safe)).eval()


@pytest.mark.check(points=4, cell="test-distill", title={"zh": "student 的保留準確率達到 teacher 的一定比例", "en": "the student's held-out accuracy reaches a fraction of the teacher's"},
                   hint={"zh": "每步 teacher 在 no_grad 下算 logits，student 用 kd_loss 更新；記得 optimizer.step() 與 zero_grad()。",
                         "en": "Each step: teacher logits under no_grad, the student updated on kd_loss; remember optimizer.step() and zero_grad()."})
def test_student_accuracy(submission, assignment, profile, grader_tmp):
    from common_utils.compression import accuracy, sentiment_split

    fraction = assignment.settings["targets"]["kd_accuracy_fraction"]
    _, held = sentiment_split(profile)
    teacher = accuracy(_classifier(submission.nb(NB), "artifacts/teacher", grader_tmp), held, profile)
    student = accuracy(_classifier(submission.nb(NB), "artifacts/student", grader_tmp), held, profile)
    assert student >= fraction * teacher, say(
        f"student 準確率 {student:.3f}，teacher {teacher:.3f}；目標至少 {fraction} × teacher = {fraction * teacher:.3f}。",
        f"Student accuracy {student:.3f}, teacher {teacher:.3f}; the target is at least {fraction} x teacher = {fraction * teacher:.3f}.")


@pytest.mark.check(points=2, cell="test-distill", title={"zh": "student 比 teacher 小", "en": "the student is smaller than the teacher"},
                   hint={"zh": "蒸餾的對象是鎖定 cell 建的小模型，不是 teacher 本身。", "en": "Distil into the small model the locked cell builds, not the teacher."},
                   visibility="hidden")
def test_student_is_smaller(submission, grader_tmp):
    teacher = _classifier(submission.nb(NB), "artifacts/teacher", grader_tmp)
    student = _classifier(submission.nb(NB), "artifacts/student", grader_tmp)
    n_t, n_s = (sum(p.numel() for p in m.parameters()) for m in (teacher, student))
    assert n_s < n_t / 2, say(f"student 有 {n_s:,} 個參數，teacher {n_t:,}。", f"The student has {n_s:,} parameters, the teacher {n_t:,}.")
