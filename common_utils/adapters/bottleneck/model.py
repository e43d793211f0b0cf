"""Insert bottleneck adapters into a Llama- or BERT-style model and freeze everything else.

Placement: ``pfeiffer`` after each block's feed-forward output; ``houlsby`` after the attention
output too. A classifier head (BERT) stays trainable: a freshly initialised head that is
frozen can never learn (one of the original course's defects).
"""
from __future__ import annotations

from torch import nn

from common_utils.adapters.bottleneck.config import BottleneckConfig
from common_utils.adapters.bottleneck.layer import AdaptedOutput, BottleneckAdapter

# family marker -> (attention output module, FFN output module), relative to a block
SITES = {"llama": ("self_attn.o_proj", "mlp.down_proj"), "bert": ("attention.output.dense", "output.dense")}
HEADS = ("classifier", "score")


def _blocks(model: nn.Module) -> tuple[str, list[nn.Module]]:
    for name, module in model.named_modules():
        if name.endswith("layers") and isinstance(module, nn.ModuleList):
            return "llama", list(module)
        if name.endswith("encoder.layer") and isinstance(module, nn.ModuleList):
            return "bert", list(module)
    raise ValueError("bottleneck adapters support Llama-style (model.layers) and BERT-style "
                     "(encoder.layer) models; this model has neither")


def add_bottleneck_adapters(model: nn.Module, config: BottleneckConfig) -> nn.Module:
    family, blocks = _blocks(model)
    hidden = model.config.hidden_size
    for param in model.parameters():
        param.requires_grad_(False)
    attn_site, ffn_site = SITES[family]
    sites = [ffn_site] if config.placement == "pfeiffer" else [attn_site, ffn_site]
    for block in blocks:
        for site in sites:
            parent_name, _, child = site.rpartition(".")
            parent = block.get_submodule(parent_name)
            wrapped = getattr(parent, child)
            ref = next(wrapped.parameters())  # the adapter follows the wrapped layer's dtype and device
            adapter = BottleneckAdapter(hidden, config, dtype=ref.dtype, device=ref.device)
            setattr(parent, child, AdaptedOutput(wrapped, adapter))
    for name, module in model.named_modules():
        if name.split(".")[-1] in HEADS:
            for param in module.parameters():
                param.requires_grad_(True)
    return model
