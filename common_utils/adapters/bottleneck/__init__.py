"""Bottleneck adapters (Houlsby et al., 2019; Pfeiffer et al., 2020): config, layer, model."""
from common_utils.adapters.bottleneck.config import BottleneckConfig
from common_utils.adapters.bottleneck.layer import BottleneckAdapter
from common_utils.adapters.bottleneck.model import add_bottleneck_adapters

__all__ = ["BottleneckAdapter", "BottleneckConfig", "add_bottleneck_adapters"]
