"""PEFT configurations for every method of the curriculum, by name.

    config = make_peft_config("lora", r=8, target_modules=["q_proj", "v_proj"])
    model = apply_peft(load_model("llama"), "p_tuning_v2")

peft methods get their peft config class; the course-written methods (``bottleneck`` adapters
and ``bitfit``, which peft does not have) get theirs from ``common_utils.adapters``. The
original course built P-tuning and P-tuning v2 with the wrong classes: P-tuning is peft's
PromptEncoderConfig (an MLP/LSTM prompt encoder), P-tuning v2 is deep prompts, i.e. peft's
PrefixTuningConfig. Its default follows the paper's own code (THUDM/P-tuning-v2,
``prefix_projection=False``: the per-layer prompts are trained directly); pass
``prefix_projection=True`` for the reparameterised variant (an MLP of ``encoder_hidden_size``).
"""
from __future__ import annotations

from typing import Any

# method -> (kind, defaults). kind names a peft config class or a course method.
METHODS: dict[str, tuple[str, dict[str, Any]]] = {
    "lora": ("LoraConfig", {"r": 8, "lora_alpha": 16, "lora_dropout": 0.05, "target_modules": ["q_proj", "v_proj"],
                            "bias": "none"}),
    "prompt_tuning": ("PromptTuningConfig", {"num_virtual_tokens": 10}),
    "prefix_tuning": ("PrefixTuningConfig", {"num_virtual_tokens": 10}),
    "p_tuning": ("PromptEncoderConfig", {"num_virtual_tokens": 10, "encoder_hidden_size": 64}),
    # prefix_projection=False as in the paper's code (THUDM/P-tuning-v2 arguments.py); True is the
    # reparameterised variant, kept one override away.
    "p_tuning_v2": ("PrefixTuningConfig", {"num_virtual_tokens": 10, "prefix_projection": False, "encoder_hidden_size": 64}),
    "ia3": ("IA3Config", {"target_modules": ["k_proj", "v_proj", "down_proj"], "feedforward_modules": ["down_proj"]}),
    "bottleneck": ("course", {}),
    "bitfit": ("course", {}),
}
TASK_TYPES = {"causal-lm": "CAUSAL_LM", "sequence-classification": "SEQ_CLS", "seq2seq": "SEQ_2_SEQ_LM"}


def make_peft_config(method: str, task: str = "causal-lm", **overrides: Any):
    """The configuration of ``method`` with the course defaults, ``overrides`` on top."""
    if method not in METHODS:
        raise ValueError(f"unknown PEFT method {method!r}; valid methods: {', '.join(METHODS)}")
    if task not in TASK_TYPES:
        raise ValueError(f"unknown task {task!r}; valid tasks: {', '.join(TASK_TYPES)}")
    kind, defaults = METHODS[method]
    settings = {**defaults, **overrides}
    if method == "bottleneck":
        from common_utils.adapters.bottleneck.config import BottleneckConfig

        return BottleneckConfig(**settings)
    if method == "bitfit":
        from common_utils.adapters.bitfit import BitFitConfig

        return BitFitConfig(**settings)
    import peft

    return getattr(peft, kind)(task_type=TASK_TYPES[task], **settings)


def apply_peft(model, method: str, task: str = "causal-lm", **overrides: Any):
    """Wrap ``model`` for ``method``: peft's get_peft_model, or the course method's own wrapper."""
    config = make_peft_config(method, task, **overrides)
    if method == "bottleneck":
        from common_utils.adapters.bottleneck.model import add_bottleneck_adapters

        return add_bottleneck_adapters(model, config)
    if method == "bitfit":
        from common_utils.adapters.bitfit import apply_bitfit

        return apply_bitfit(model, config)
    from peft import get_peft_model

    return get_peft_model(model, config)
