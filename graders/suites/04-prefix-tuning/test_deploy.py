"""04-deploy: the reparameterisation MLP removed by hand (against peft's prefix), and several prefixes
served on one base (each request as its adapter alone)."""
import pytest
import torch

from graders.plugin import say
from graders.plugin.outcomes import Diagnosed
from graders.suites import peft_tester


NB = "04-deploy"
PROMPTS = ["### Instruction:\nWhat is the capital of France?\n\n### Response:\n",
           "### Instruction:\nReverse the word\n\n### Input:\ncat\n\n### Response:\n"]


@pytest.mark.check(points=3, cell="test-remove", title={"zh": "部署時拿掉 MLP：P = MLP(P')", "en": "the MLP removed for deployment: P = MLP(P')"},
                   hint={"zh": "回傳 {\"embedding.weight\": W2 tanh(W1 P' + b1) + b2}，形狀 (n, 2Ld)；nn.Linear 的 weight 是 (out, in)。",
                         "en": "Return {\"embedding.weight\": W2 tanh(W1 P' + b1) + b2}, shape (n, 2Ld); nn.Linear's weight is (out, in)."})
def test_removes_mlp(submission, rng, peft_prefix):
    heads = int(torch.randint(2, 5, (1,), generator=rng))
    sizes = {"num_virtual_tokens": int(torch.randint(2, 7, (1,), generator=rng)), "num_layers": int(torch.randint(1, 4, (1,), generator=rng)),
             "num_heads": heads, "head_dim": heads + 1, "prefix_projection": True,
             "encoder_hidden_size": int(torch.randint(3, 10, (1,), generator=rng))}
    model = peft_prefix.model(sizes)
    state = peft_prefix.draw(model, rng, scale=0.5)
    want = model.get_prompt_embedding_to_save("default")  # peft's P, the tensor it saves
    got = submission.nb(NB).call("deploy_prefix_on", state)
    shapes = {k: tuple(v.shape) for k, v in got.items()} if isinstance(got, dict) else type(got).__name__
    if shapes != {"embedding.weight": tuple(want.shape)}:
        raise Diagnosed(say(f"應回傳只有 embedding.weight 的 dict，形狀 (n, 2Ld) = {tuple(want.shape)}；實際 {shapes}。",
                            f"Return a dict holding only embedding.weight of shape (n, 2Ld) = {tuple(want.shape)}; got {shapes}."))
    gap = float((got["embedding.weight"] - want).abs().max())
    assert gap <= 1e-5, say(f"P 與 peft 存下的 prefix 最多差 {gap:.3g}：MLP 是 Linear → Tanh → Linear，weight 要轉置。",
                            f"P differs from the prefix peft saves by up to {gap:.3g}: the MLP is Linear -> Tanh -> Linear, with transposed weights.")


@pytest.mark.check(points=4, cell="test-serve", title={"zh": "一個 base 同時服務多個 prefix", "en": "one base serves several prefixes"},
                   hint={"zh": "每個請求先 set_adapter(名字) 再生成；所有 adapter 以不同 adapter_name 載入同一個 PeftModel。",
                         "en": "set_adapter(name) before each request; load every adapter into one PeftModel under its own adapter_name."},
                   timeout=300, visibility="hidden")  # its expected text would show the kit how to decode
def test_serves_several_adapters(submission, profile, rng, make_prefix_adapter, grader_tmp):
    from peft import PeftModel

    from common_utils.models import load_model, load_tokenizer

    tok = load_tokenizer(profile, "gpt2")
    folders = {name: make_prefix_adapter(rng, name, int(torch.randint(4, 12, (1,), generator=rng))) for name in ("alpha", "beta")}
    alone = {name: dict(zip(PROMPTS, peft_tester.greedy_texts(
        PeftModel.from_pretrained(load_model("gpt2", profile), str(folder)).eval(), tok, PROMPTS, 8)))
        for name, folder in folders.items()}
    requests = [["alpha", PROMPTS[0]], ["beta", PROMPTS[0]], ["beta", PROMPTS[1]], ["alpha", PROMPTS[1]]]
    paths = {name: submission.put(folder, f"grader-adapters/{name}") for name, folder in folders.items()}
    got = submission.nb(NB).call("serve_requests", paths, requests, 8)
    problem = peft_tester.served_texts_diagnosis(got, alone, requests)
    if problem:
        raise Diagnosed(problem)
