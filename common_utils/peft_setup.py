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
    # No targets named here: peft picks each architecture's own keys, values and feed-forward input
    # (Llama's k_proj, v_proj, down_proj; BERT's key, value, output.dense; GPT-2's c_attn, mlp.c_proj;
    # T5's k, v, wo), where Llama's names would match nothing in BERT, GPT-2 or T5.
    "ia3": ("IA3Config", {}),
    "bottleneck": ("course", {}),
    "bitfit": ("course", {}),
}
TASK_TYPES = {"causal-lm": "CAUSAL_LM", "sequence-classification": "SEQ_CLS", "seq2seq": "SEQ_2_SEQ_LM"}


def ia3_targets(family: str = "llama") -> tuple[list[str], list[str]]:
    """IA3's (target_modules, feedforward_modules) on a family's architecture: peft's own defaults,
    which the ``ia3`` method uses when no targets are given."""
    from peft.utils import TRANSFORMERS_MODELS_TO_IA3_FEEDFORWARD_MODULES_MAPPING as feedforward
    from peft.utils import TRANSFORMERS_MODELS_TO_IA3_TARGET_MODULES_MAPPING as targets

    if family not in ("llama", "bert", "gpt2", "t5"):
        raise ValueError(f"unknown model family {family!r}; valid families: llama, bert, gpt2, t5")
    return list(targets[family]), list(feedforward[family])


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


def counts_on_meta(family: str, method: str | None, profile: str | None = "full", **overrides: Any) -> dict:
    """Trainable and total parameters of ``method`` (None: the bare model) on ``family``'s
    architecture, built on the meta device: the 7B counts on a laptop, in a second."""
    from common_utils.models import build_on_meta, get_model_spec
    from common_utils.monitor import parameter_report

    model = build_on_meta(family, profile)
    if method is not None:
        model = apply_peft(model, method, get_model_spec(family, profile).task, **overrides)
    report = parameter_report(model)
    return {"trainable": report["trainable"], "total": report["total"]}


# Lab 1.1 compares every method on one task: sentence classification with the profile's BERT.
# method -> overrides of make_peft_config on BERT (its module names; prefix tuning with Li & Liang's
# reparameterisation MLP, P-tuning v2 without, as in each paper's code). "full" is full fine-tuning.
COMPARED: dict[str, dict[str, Any]] = {
    "full": {},
    "lora": {"target_modules": ["query", "value"]},
    "bottleneck": {"placement": "houlsby"},
    "prompt_tuning": {},
    "prefix_tuning": {"prefix_projection": True},
    "p_tuning": {},
    "p_tuning_v2": {},
    "ia3": {},
    "bitfit": {},
}


def compared_model(method: str, profile: str | None = None):
    """The profile's BERT classifier set up for ``method`` of lab 1.1 (the table's rows), built the
    same way by the notebook and by the grader."""
    from common_utils.models import load_model

    if method not in COMPARED:
        raise ValueError(f"unknown compared method {method!r}; valid: {', '.join(COMPARED)}")
    base = load_model("bert", profile, for_training=True)
    if method == "full":
        for p in base.parameters():
            p.requires_grad_(True)
        return base
    return apply_peft(base, method, task="sequence-classification", **COMPARED[method])


def compared_model_on_the_fence(method: str, seed: int, batches: list[dict], profile: str | None = None):
    """``compared_model`` with its trainable head drawn from ``seed`` and the head's bias set between the
    two middle rows of ``batches`` (half the rows on each side, none on the boundary). The grader of lab
    1.1 hands it over in training mode: dropout then flips predictions, so a forgotten eval() shows."""
    import torch

    from common_utils.training import model_device, to_device

    torch.manual_seed(seed)
    model = compared_model(method, profile)
    head = [(n, p) for n, p in model.named_parameters() if "classifier" in n and p.requires_grad]
    with torch.no_grad():
        for _, p in head:
            p.copy_(torch.randn_like(p))
        model.eval()
        logits = torch.cat([model(**{k: v for k, v in to_device(b, model_device(model)).items() if k != "labels"}).logits
                            for b in batches])
        gaps = (logits[:, 1] - logits[:, 0]).sort().values
        middle = len(gaps) // 2
        next(p for n, p in head if n.endswith("bias"))[1] -= (gaps[middle - 1] + gaps[middle]) / 2
    return model
