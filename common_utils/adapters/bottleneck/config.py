"""Settings of bottleneck adapters, checked where they are built."""
from __future__ import annotations

from dataclasses import dataclass, field

PLACEMENTS = ("houlsby", "pfeiffer")
ACTIVATIONS = ("relu", "gelu", "tanh")


@dataclass
class BottleneckConfig:
    bottleneck_size: int = field(default=16, metadata={"help": "width of the down-projection (Houlsby used 8-256)"})
    placement: str = field(default="pfeiffer", metadata={"help": "houlsby: after attention and FFN; pfeiffer: after FFN only"})
    activation: str = field(default="relu", metadata={"help": "non-linearity between down and up projection"})
    dropout: float = field(default=0.0, metadata={"help": "dropout on the adapter's output"})

    def __post_init__(self) -> None:
        if not isinstance(self.bottleneck_size, int) or self.bottleneck_size < 1:
            raise ValueError(f"bottleneck_size must be a positive int, got {self.bottleneck_size!r}")
        if self.placement not in PLACEMENTS:
            raise ValueError(f"placement {self.placement!r}: use one of {', '.join(PLACEMENTS)}")
        if self.activation not in ACTIVATIONS:
            raise ValueError(f"activation {self.activation!r}: use one of {', '.join(ACTIVATIONS)}")
        if not 0.0 <= self.dropout < 1.0:
            raise ValueError(f"dropout must be in [0, 1), got {self.dropout!r}")
