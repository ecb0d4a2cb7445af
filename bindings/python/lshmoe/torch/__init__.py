# SPDX-License-Identifier: Apache-2.0
"""lshmoe for PyTorch (CPU tensors in this version).

all_to_all_single  drop-in for torch.distributed.all_to_all_single that
                   compresses floating tensors, differentiable
MoE, MoEDispatch, MoECombine
                   the C MoE mode as autograd Functions
MoELayer           router + top-k + MLP experts over them (the example to copy)
"""
from ._alltoall import all_to_all_single, configure, context_for
from ._moe import MoE, MoECombine, MoEDispatch
from ._layer import MoELayer, reference_moe

__all__ = ["all_to_all_single", "configure", "context_for", "MoE", "MoEDispatch",
           "MoECombine", "MoELayer", "reference_moe"]
