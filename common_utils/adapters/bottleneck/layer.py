"""One bottleneck adapter: h + up(act(down(h))), with ``up`` zero-initialised so that a fresh
adapter is the identity and training starts from the base model."""
from __future__ import annotations

import torch
from torch import nn

from common_utils.adapters.bottleneck.config import BottleneckConfig

ACTIVATION = {"relu": nn.ReLU, "gelu": nn.GELU, "tanh": nn.Tanh}


class BottleneckAdapter(nn.Module):
    def __init__(self, hidden_size: int, config: BottleneckConfig, *, dtype: torch.dtype | None = None,
                 device: torch.device | str | None = None):
        super().__init__()
        # dtype/device of the wrapped layer: a bf16 or GPU model fails in its forward pass otherwise.
        self.down = nn.Linear(hidden_size, config.bottleneck_size, dtype=dtype, device=device)
        self.act = ACTIVATION[config.activation]()
        self.up = nn.Linear(config.bottleneck_size, hidden_size, dtype=dtype, device=device)
        self.dropout = nn.Dropout(config.dropout)
        nn.init.zeros_(self.up.weight)
        nn.init.zeros_(self.up.bias)

    def forward(self, hidden: torch.Tensor) -> torch.Tensor:
        return hidden + self.dropout(self.up(self.act(self.down(hidden))))


class AdaptedOutput(nn.Module):
    """Wraps a sub-layer (attention or FFN output) and runs the adapter on its hidden states."""

    def __init__(self, base: nn.Module, adapter: BottleneckAdapter):
        super().__init__()
        self.base = base
        self.adapter = adapter

    def forward(self, *args, **kwargs):
        out = self.base(*args, **kwargs)
        if isinstance(out, tuple):  # attention modules return (hidden, weights, ...)
            return (self.adapter(out[0]), *out[1:])
        return self.adapter(out)
