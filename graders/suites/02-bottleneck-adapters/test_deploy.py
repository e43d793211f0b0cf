"""04-merge-and-deploy: several adapter sets served on one base, on tasks and requests the grader draws."""
import pytest
import torch

from graders.suites import peft_tester

NB = "04-merge-and-deploy"
SPEC = {"placement": "houlsby", "bottleneck_size": 16, "activation": "relu"}


def _model(profile: str):
    from common_utils.adapters.bottleneck import BottleneckConfig, add_bottleneck_adapters
    from common_utils.models import load_model

    return add_bottleneck_adapters(load_model("bert", profile), BottleneckConfig(**SPEC)).eval()


def _tasks(profile: str, rng) -> dict:
    """Two or three tasks: random adapters (up not zero, so each task changes the output) and heads."""
    trainable = {n: p.detach() for n, p in _model(profile).named_parameters() if p.requires_grad}
    return {f"task{t}": {n: 0.3 * torch.randn(v.shape, generator=rng) for n, v in trainable.items()}
            for t in range(int(torch.randint(2, 4, (1,), generator=rng)))}


@pytest.mark.check(points=4, cell="test-serve", title={"zh": "一個 base 服務多組 adapter：每個請求等於單獨載入該任務",
                                                       "en": "one base serves several adapters: each request equals its task loaded alone"},
                   hint={"zh": "每個任務先 load_state_dict 換上它的張量再推論；輸出順序與 requests 相同。",
                         "en": "Load each task's tensors before running its requests; keep the order of the requests."})
def test_serves_several_tasks(submission, profile, rng):
    from common_utils.datasets import load_course_dataset
    from common_utils.models import load_tokenizer

    tasks = _tasks(profile, rng)
    rows = load_course_dataset("paraphrase", "tiny", split="held_out")  # texts only
    names = sorted(tasks)
    order = [names[-1], *names, names[0], names[-1]]  # interleaved, a later task first
    picks = [rows[int(torch.randint(len(rows), (1,), generator=rng))] for _ in order]
    requests = [[task, r["sentence1"], r["sentence2"]] for task, r in zip(order, picks)]
    from common_utils.training import model_device, to_device

    tok = load_tokenizer(profile, "bert")
    want = []
    for task, a, b in requests:
        model = _model(profile)
        model.load_state_dict(tasks[task], strict=False)
        enc = to_device(tok([a], [b], return_tensors="pt"), model_device(model))
        with torch.no_grad():
            want.append(model(input_ids=enc["input_ids"], attention_mask=enc["attention_mask"]).logits[0].cpu())
    want = torch.stack(want)
    got = submission.nb(NB).call("serve_requests", tasks, requests)
    peft_tester.require_served(got, want, requests)
