"""02-train part 1: the SoftPrompt written from scratch, against peft's prompt tuning."""
import pytest
import torch

from graders.plugin import say
from graders.plugin.outcomes import Diagnosed

NB = "02-train"


@pytest.mark.check(points=3, cell="test-soft-prompt", title={"zh": "SoftPrompt 從詞彙 embedding 初始化", "en": "SoftPrompt initialised from vocabulary embeddings"},
                   hint={"zh": "prompt = embedding.weight[init_token_ids].detach().clone()，形狀 (n, d_model)；只有它可訓練。",
                         "en": "prompt = embedding.weight[init_token_ids].detach().clone(), shape (n, d_model); only it trains."})
def test_init_from_vocab(submission, profile, rng):
    from common_utils.models import load_model

    vocab = load_model("llama", profile).get_input_embeddings().weight.detach().cpu()
    n = int(torch.randint(3, 12, (1,), generator=rng))
    ids = [int(i) for i in torch.randint(0, vocab.shape[0], (n,), generator=rng)]
    got = submission.nb(NB).call("fresh_soft_prompt", ids)
    prompt, trainable = got["prompt"], int(got["trainable"])
    want = vocab[ids]
    assert tuple(prompt.shape) == tuple(want.shape), say(
        f"prompt 形狀應為 (n, d_model) = {tuple(want.shape)}，實際 {tuple(prompt.shape)}。",
        f"The prompt should have shape (n, d_model) = {tuple(want.shape)}; got {tuple(prompt.shape)}.")
    if not torch.allclose(prompt, want, atol=1e-6):
        rows = int((prompt - want).abs().amax(dim=1).gt(1e-6).sum())
        raise Diagnosed(say(f"{rows}/{n} 列不等於 embedding.weight[init_token_ids]：是否用了隨機初始化？"
                            "Lester et al. 顯示從詞彙初始化比隨機穩定。",
                            f"{rows}/{n} rows differ from embedding.weight[init_token_ids]: random initialisation? "
                            "Lester et al. show vocabulary initialisation is more stable than random."))
    assert bool(got["vocab_unchanged"]), say("建立 SoftPrompt 改到了詞彙表：請用 detach().clone() 複製。",
                                             "Building the SoftPrompt changed the vocabulary: copy with detach().clone().")
    hidden = vocab.shape[1]
    assert trainable == n * hidden, say(
        f"SoftPrompt 的可訓練參數應為 n × d_model = {n} × {hidden} = {n * hidden:,}，實際 {trainable:,}："
        "embedding 是否也被註冊成 SoftPrompt 的參數？",
        f"The SoftPrompt's trainable parameters should be n x d_model = {n} x {hidden} = {n * hidden:,}; got {trainable:,}: "
        "is the embedding registered as a parameter of the SoftPrompt too?")


def _inputs(rng, vocab_size):
    batch, length = 3, int(torch.randint(6, 11, (1,), generator=rng))
    ids = torch.randint(3, vocab_size, (batch, length), generator=rng)
    mask = torch.ones(batch, length, dtype=torch.long)
    mask[1, : int(torch.randint(1, length // 2, (1,), generator=rng))] = 0  # a left-padded row
    mask[2, -int(torch.randint(1, length // 2, (1,), generator=rng)):] = 0  # a right-padded row
    labels = ids.masked_fill(mask == 0, -100)
    labels[:, :2] = -100  # prompt tokens
    return ids, mask, labels


def _run(base, embeds, mask, labels):
    with torch.no_grad():
        out = base(inputs_embeds=embeds, attention_mask=mask, labels=labels)
    return out.logits, out.loss


@pytest.mark.check(points=4, cell="test-soft-prompt", title={"zh": "SoftPrompt 與 peft 的 prompt tuning 相同", "en": "SoftPrompt equals peft's prompt tuning"},
                   hint={"zh": "soft prompt 接在 embedding 前面；attention_mask 前面補 1、labels 前面補 -100；以 inputs_embeds 呼叫 model。",
                         "en": "The soft prompt goes before the embeddings; prefix 1 to the mask and -100 to the labels; call the model with inputs_embeds."},
                   visibility="hidden")
def test_equals_peft(submission, profile, rng):
    from peft import PromptTuningConfig, get_peft_model

    from common_utils.models import load_model
    from common_utils.training import model_device

    base = load_model("llama", profile).eval()
    vocab = base.get_input_embeddings().weight.detach().cpu()
    n = int(torch.randint(3, 9, (1,), generator=rng))
    prompt = vocab[torch.randint(0, vocab.shape[0], (n,), generator=rng)] + 0.5 * torch.randn(n, vocab.shape[1], generator=rng)
    ids, mask, labels = _inputs(rng, vocab.shape[0])
    peft_model = get_peft_model(base, PromptTuningConfig(task_type="CAUSAL_LM", num_virtual_tokens=n)).eval()
    got = submission.nb(NB).call("soft_prompt_forward", prompt, ids, mask, labels)
    logits, loss = got["logits"], float(got["loss"])
    device = model_device(base)  # the grader's own runs below are on the model's device, compared on the CPU
    prompt, ids, mask, labels = (t.to(device) for t in (prompt, ids, mask, labels))
    with torch.no_grad():
        peft_model.prompt_encoder["default"].embedding.weight.copy_(prompt)
        out = peft_model(input_ids=ids, attention_mask=mask, labels=labels)
    want = out.logits.cpu()
    if tuple(logits.shape) != tuple(want.shape):
        raise Diagnosed(say(f"logits 形狀應為 (batch, n + L, vocab) = {tuple(want.shape)}，實際 {tuple(logits.shape)}。",
                            f"The logits should have shape (batch, n + L, vocab) = {tuple(want.shape)}; got {tuple(logits.shape)}."))
    if not torch.allclose(logits, want, atol=1e-4, rtol=1e-4):
        plain = peft_model.get_base_model()
        embeds = plain.get_input_embeddings()(ids)
        p = prompt.unsqueeze(0).expand(ids.shape[0], -1, -1)
        ones = torch.ones(ids.shape[0], n, dtype=mask.dtype, device=device)
        known_wrong = {
            say("soft prompt 接在輸入 **後面**：它應該在前面。", "The soft prompt was appended after the input; it goes first."):
                _run(plain, torch.cat([embeds, p], 1), torch.cat([mask, ones], 1), None)[0].cpu(),
            say("attention_mask 前面補了 0：soft prompt 被遮掉，等於不存在。", "The attention mask was prefixed with 0: the soft prompt is masked out."):
                _run(plain, torch.cat([p, embeds], 1), torch.cat([0 * ones, mask], 1), None)[0].cpu(),
        }
        for why, value in known_wrong.items():
            if torch.allclose(logits, value, atol=1e-4, rtol=1e-4):
                raise Diagnosed(why)
        gap = (logits - want).abs().max().item()
        raise Diagnosed(say(f"logits 與 peft 的 prompt tuning 最多差 {gap:.3g}。",
                            f"The logits differ from peft's prompt tuning by up to {gap:.3g}."))
    if abs(loss - float(out.loss)) > 1e-4 * max(1.0, abs(float(out.loss))):
        raise Diagnosed(say(f"logits 正確，但 loss {loss:.4f} 與 peft 的 {float(out.loss):.4f} 不同：labels 前面應補 n 個 -100。",
                            f"The logits are right but the loss {loss:.4f} differs from peft's {float(out.loss):.4f}: "
                            "prefix n times -100 to the labels."))
