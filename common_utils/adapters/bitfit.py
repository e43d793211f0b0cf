"""BitFit (Ben Zaken et al., 2022): train only the bias terms (and a fresh classifier head).

Llama-family models have no bias terms at all, so BitFit cannot apply there: ``apply_bitfit``
says so instead of silently training nothing.
"""
from __future__ import annotations

from dataclasses import dataclass, field

from torch import nn


@dataclass
class BitFitConfig:
    train_head: bool = field(default=True, metadata={"help": "also train a classifier head (a fresh head must learn)"})


def apply_bitfit(model: nn.Module, config: BitFitConfig | None = None) -> nn.Module:
    config = config or BitFitConfig()
    biases = [(n, p) for n, p in model.named_parameters() if n.endswith(".bias")]
    if not biases:
        raise ValueError(f"{type(model).__name__} has no bias parameters, so BitFit has nothing to train "
                         "(Llama-family models use bias-free linear layers); use a BERT- or GPT-2-style model")
    for name, param in model.named_parameters():
        is_head = config.train_head and name.split(".")[0] in ("classifier", "score")
        param.requires_grad_(name.endswith(".bias") or is_head)
    return model
