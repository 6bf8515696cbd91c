"""FSDP2 with torch's own `fully_shard` (`train.fsdp: true` under a multi-process launch).

accelerate turns its FSDP plugin on only on accelerators (on CPUs a launch with an FSDP config
becomes DDP), so this is how a run shards on CPUs, and it works the same on GPUs (accelerate's
`fsdp.yaml` is the other way there). Every decoder layer and vision block is its own FSDP unit,
then the vision tower, then the whole model: parameters are sharded across the processes and gathered layer by layer in
each forward; gradients are reduce-scattered (averaged, as DDP's are), so the SFT token weighting
of `VideoSFT.step` holds unchanged.

Every process must make the same collective calls in the same order, so GRPO's sampling goes on
until *every* process has finished its completions (`any_across`), as `generate(synced_gpus=True)`
does. Saving gathers the full weights and optimizer state onto each process (`full_state_dict`,
`full_optimizer_state`, collective); the main process writes them, and a resume gives every process
its shards back (`load_optimizer_state`).
"""

from __future__ import annotations

from typing import Any

import torch


def shard(model: Any, device_type: str, world: int) -> None:
    """Shard `model` in place across the `world` processes of the default process group."""
    from torch.distributed.device_mesh import init_device_mesh
    from torch.distributed.fsdp import fully_shard

    from trainer.grpo import _inner

    mesh = init_device_mesh(device_type, (world,))
    inner = _inner(model)
    for block in inner.visual.blocks:
        fully_shard(block, mesh=mesh)
    # the tower as a unit too: GRPO encodes a prompt's video through it directly (not through the
    # model's forward), and a unit's parameters are gathered only when the unit itself is called
    fully_shard(inner.visual, mesh=mesh)
    for layer in inner.language_model.layers:
        fully_shard(layer, mesh=mesh)
    fully_shard(model, mesh=mesh)
    # FSDP2 sets up its units on the root's first forward and refuses a unit called before that;
    # GRPO's first call is the vision tower's. Set them up now (torch has no public call for it).
    model._get_fsdp_state()._lazy_init()


def full_state_dict(model: Any) -> dict[str, torch.Tensor]:
    """The whole model's weights on every process, on the CPU (collective: every process calls it)."""
    from torch.distributed.checkpoint.state_dict import StateDictOptions, get_model_state_dict

    return get_model_state_dict(model, options=StateDictOptions(full_state_dict=True, cpu_offload=True))


def any_across(flag: bool, device: Any) -> bool:
    """True when `flag` is True on any process (collective)."""
    import torch.distributed as dist

    t = torch.tensor([1.0 if flag else 0.0], device=device)
    dist.all_reduce(t, op=dist.ReduceOp.MAX)
    return bool(t.item() > 0)


def full_optimizer_state(model: Any, optimizer: Any) -> dict[str, Any]:
    """The optimizer's whole state (keyed by parameter names), on every process, on the CPU (collective)."""
    from torch.distributed.checkpoint.state_dict import StateDictOptions, get_optimizer_state_dict

    return get_optimizer_state_dict(model, optimizer, options=StateDictOptions(full_state_dict=True, cpu_offload=True))


def load_optimizer_state(model: Any, optimizer: Any, state: dict[str, Any]) -> None:
    """Put a `full_optimizer_state` back into a sharded run's optimizer (each process takes its shards)."""
    from torch.distributed.checkpoint.state_dict import StateDictOptions, set_optimizer_state_dict

    set_optimizer_state_dict(model, optimizer, optim_state_dict=state,
                             options=StateDictOptions(full_state_dict=True))
