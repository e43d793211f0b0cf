"""04-merge-and-deploy: several BitFit tasks served on one base, on tasks and requests the grader draws."""
import pytest
import torch

from graders.suites import peft_tester

NB = "04-merge-and-deploy"


def _tasks(profile: str, rng) -> dict:
    """Two or three tasks: perturbed biases and a fresh head each; the later ones change only some biases."""
    from common_utils.adapters.bitfit import apply_bitfit
    from common_utils.models import load_model

    trainable = {n: p.detach().cpu() for n, p in apply_bitfit(load_model("bert", profile)).named_parameters() if p.requires_grad}
    names = sorted(trainable)
    tasks = {}
    for t in range(int(torch.randint(2, 4, (1,), generator=rng))):
        keep = names if t == 0 else [n for n in names if n.startswith("classifier.") or torch.rand(1, generator=rng) < 0.3]
        tasks[f"task{t}"] = {n: trainable[n] + 0.5 * torch.randn(trainable[n].shape, generator=rng) for n in keep}
    return tasks


def _alone(profile: str, tasks: dict, requests: list, tok) -> torch.Tensor:
    from common_utils.models import load_model
    from common_utils.training import model_device, to_device

    rows = []
    for task, text in requests:
        model = load_model("bert", profile).eval()
        model.load_state_dict(tasks[task], strict=False)
        enc = to_device(tok([text], return_tensors="pt"), model_device(model))
        with torch.no_grad():
            rows.append(model(input_ids=enc["input_ids"], attention_mask=enc["attention_mask"]).logits[0].cpu())
    return torch.stack(rows)


@pytest.mark.check(points=4, cell="test-serve", title={"zh": "一個 base 服務多個任務：每個請求等於單獨載入該任務",
                                                       "en": "one base serves several tasks: each request equals its task loaded alone"},
                   hint={"zh": "activate() 先把 bias 與分類頭還原成 base 的值，再換上任務的張量；輸出順序與 requests 相同。",
                         "en": "activate() restores the base's biases and head first, then copies the task's tensors in; "
                               "keep the order of the requests."})
def test_serves_several_tasks(submission, profile, rng):
    from common_utils.datasets import load_course_dataset
    from common_utils.models import load_tokenizer

    tasks = _tasks(profile, rng)
    rows = load_course_dataset("sentiment", "tiny", split="held_out")  # texts only
    names = sorted(tasks)
    # A server that never resets leaks task0 (all biases) into the later, partial tasks; one that serves in
    # task order answers the interleaved requests out of order.
    order = [*names, names[-1], names[0]]  # a partial task after the full one; interleaved
    requests = [[task, rows[int(torch.randint(len(rows), (1,), generator=rng))]["text"]] for task in order]
    want = _alone(profile, tasks, requests, load_tokenizer(profile, "bert"))
    got = submission.nb(NB).call("serve_requests", tasks, requests)
    peft_tester.require_served(got, want, requests)
