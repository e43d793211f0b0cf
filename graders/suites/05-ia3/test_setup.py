"""01-setup: the IA3 count by the formula against peft's IA3 on a Llama the grader describes."""
import pytest
import torch

from graders.plugin import say
from graders.plugin.outcomes import Diagnosed

NB = "01-setup"


def peft_count(config: dict) -> int:
    """peft's IA3 (the course's placement: keys, values, down_proj's input) on a Llama built from ``config``."""
    from peft import get_peft_model
    from transformers import LlamaConfig, LlamaForCausalLM

    from common_utils.peft_setup import make_peft_config

    model = get_peft_model(LlamaForCausalLM(LlamaConfig(vocab_size=16, max_position_embeddings=16, **config)),
                           make_peft_config("ia3"))
    return sum(p.numel() for p in model.parameters() if p.requires_grad)


@pytest.mark.check(points=3, cell="test-count", title={"zh": "IA3 參數量公式（grader 選的 Llama 設定）", "en": "the IA3 count formula (a Llama configuration the grader chose)"},
                   hint={"zh": "每層：l_k、l_v 長 num_key_value_heads × head_dim，l_ff 長 intermediate_size（down_proj 的輸入）。",
                         "en": "Per layer: l_k and l_v of num_key_value_heads * head_dim, l_ff of intermediate_size (down_proj's input)."})
def test_count_matches_peft(submission, rng):
    heads = [2, 4, 8][int(torch.randint(0, 3, (1,), generator=rng))]
    kv_heads = heads // 2  # grouped-query attention: fewer key/value heads than query heads
    head_dim = 2 * int(torch.randint(1, 4, (1,), generator=rng))  # RoPE needs an even head_dim
    hidden = heads * head_dim
    # intermediate_size > hidden_size, as in real FFNs: a formula that swaps them cannot pass by chance
    config = {"hidden_size": hidden, "num_attention_heads": heads, "num_key_value_heads": kv_heads,
              "intermediate_size": hidden + int(torch.randint(1, 24, (1,), generator=rng)),
              "num_hidden_layers": int(torch.randint(1, 4, (1,), generator=rng))}
    want = peft_count(config)
    got = int(submission.nb(NB).call("count_on", config))
    if got == want:
        return
    layers, kv = config["num_hidden_layers"], kv_heads * head_dim
    numbers = say(f"設定 {config}：預期 {want:,}，實際 {got:,}。", f"Configuration {config}: expected {want:,}, got {got:,}. ")
    if got == layers * (2 * kv + config["hidden_size"]):
        why = say("l_ff 用了 hidden_size：它縮放的是 down_proj 的 **輸入**，長度是 intermediate_size。",
                  "l_ff uses hidden_size: it scales down_proj's input, of length intermediate_size.")
    elif got == layers * (2 * config["hidden_size"] + config["intermediate_size"]):
        why = say("l_k、l_v 用了 hidden_size：key/value 的 head 數是 num_key_value_heads。",
                  "l_k and l_v use hidden_size: keys and values have num_key_value_heads heads.")
    else:
        why = say("每層 = 2 × num_key_value_heads × head_dim + intermediate_size。",
                  "Per layer = 2 * num_key_value_heads * head_dim + intermediate_size.")
    raise Diagnosed(numbers + why)
