"""primer's weights (`pretrain --record-batches`' init.safetensors and final.safetensors,
written by Burn's store) into and out of the reference's modules.

Keys are the module paths of both (`model.blocks.0.attn.qkv.weight`); Burn stores a linear
weight as [in, out] where PyTorch's is [out, in], and LayerNorm's weight and bias as gamma and
beta.
"""

import torch
import torch.nn as nn
from safetensors.torch import load_file


def primer_names(networks):
    """(torch name, primer name, transposed) for every parameter of `networks`."""
    names = []
    for module_name, module in networks.named_modules():
        for param_name, _ in module.named_parameters(recurse=False):
            torch_name = f"{module_name}.{param_name}"
            primer_name = torch_name
            if isinstance(module, nn.LayerNorm):
                primer_name = f"{module_name}.{ {'weight': 'gamma', 'bias': 'beta'}[param_name] }"
            transposed = isinstance(module, nn.Linear) and param_name == "weight"
            names.append((torch_name, primer_name, transposed))
    return names


def load_primer(networks, path):
    """Copies the weights of `path` into `networks`; every parameter must be there, and every
    stored tensor must have a place."""
    stored = load_file(str(path))
    params = dict(networks.named_parameters())
    used = set()
    with torch.no_grad():
        for torch_name, primer_name, transposed in primer_names(networks):
            if primer_name not in stored:
                raise SystemExit(f"{path}: no weight {primer_name}: the run's model is not the reference's")
            value = stored[primer_name].to(torch.float32)
            params[torch_name].copy_(value.t() if transposed else value)
            used.add(primer_name)
    unused = sorted(set(stored) - used)
    if unused:
        raise SystemExit(f"{path}: weight {unused[0]} has no place in the reference ({len(unused)} such)")


def primer_layout(networks):
    """The parameters of `networks` by primer name, in primer's layout."""
    params = dict(networks.named_parameters())
    return {
        primer_name: (params[torch_name].detach().t() if transposed else params[torch_name].detach())
        for torch_name, primer_name, transposed in primer_names(networks)
    }


def largest_difference(networks, path):
    """(largest absolute difference, its tensor, that tensor's largest magnitude) between the
    weights of `networks` and those stored at `path`."""
    stored = load_file(str(path))
    worst = (0.0, None, 0.0)
    for name, value in primer_layout(networks).items():
        diff = (value - stored[name].to(torch.float32)).abs().max().item()
        if diff >= worst[0]:
            worst = (diff, name, value.abs().max().item())
    return worst
