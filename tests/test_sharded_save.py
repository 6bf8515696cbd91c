"""Control flow of the FSDP / DeepSpeed (sharded) save and resume in trainer/loop.py, on the CPU.

FSDP and ZeRO-3 need GPUs, so these tests drive `_save_sharded` / `_load_sharded` with fake
accelerators: one thread per process, `wait_for_everyone` a real barrier between the threads,
`get_state_dict` / `save_state` / `load_state` recording their calls. What they check: every
process gathers (the gather is collective) and calls save_state, only the main process writes the
model, processor and trainer_state.pt, with the gathered state dict, and the folder appears whole.
They do not check that accelerate's gathers or save_state are right on real sharded models.
"""

from __future__ import annotations

import json
import threading
from pathlib import Path

import pytest
import torch
import yaml

pytest.importorskip("accelerate")
from accelerate.utils import DistributedType

from trainer.loop import ACC_STATE, STATE, _load_sharded, _save_sharded, is_sharded

ROOT = Path(__file__).resolve().parents[1]


class FakeAcc:
    def __init__(self, rank: int, world: int, barrier: threading.Barrier, kind=DistributedType.FSDP) -> None:
        self.distributed_type = kind
        self.process_index = rank
        self.num_processes = world
        self.is_main_process = rank == 0
        self.barrier = barrier
        self.calls: list[tuple] = []

    def get_state_dict(self, model):
        self.calls.append(("get_state_dict", model))
        self.barrier.wait()  # collective: would hang if a process skipped it
        # accelerate (FSDP rank0_only / ZeRO-3): the full weights on the main process only
        return {"w": torch.full((2,), 7.0)} if self.is_main_process else {}

    def wait_for_everyone(self):
        self.calls.append(("wait",))
        self.barrier.wait()

    def save_state(self, path):
        self.calls.append(("save_state", path))
        self.barrier.wait()
        Path(path).mkdir(parents=True, exist_ok=True)
        (Path(path) / f"optimizer_shard_{self.process_index}.bin").write_bytes(b"x")

    def load_state(self, path):
        self.calls.append(("load_state", path))


class FakeModel:
    def __init__(self) -> None:
        self.saved: list[tuple] = []

    def save_pretrained(self, path, state_dict=None):
        self.saved.append((Path(path), state_dict))
        torch.save(state_dict, Path(path) / "weights.pt")


class FakeProcessor:
    def __init__(self) -> None:
        self.saved: list[Path] = []

    def save_pretrained(self, path):
        self.saved.append(Path(path))
        (Path(path) / "processor.json").write_text("{}")


def _run_ranks(world: int, fn):
    """fn(acc) in one thread per process; the accelerators and their errors."""
    barrier = threading.Barrier(world, timeout=20)
    accs = [FakeAcc(r, world, barrier) for r in range(world)]
    errors: list[BaseException] = []

    def target(acc):
        try:
            fn(acc)
        except BaseException as e:  # noqa: BLE001 - reported below
            errors.append(e)
            barrier.abort()

    threads = [threading.Thread(target=target, args=(a,)) for a in accs]
    for t in threads:
        t.start()
    for t in threads:
        t.join(30)
    assert not errors, errors
    return accs


def test_is_sharded_only_for_fsdp_and_deepspeed():
    b = threading.Barrier(1)
    for kind, expected in [(DistributedType.FSDP, True), (DistributedType.DEEPSPEED, True),
                           (DistributedType.MULTI_GPU, False), (DistributedType.MULTI_CPU, False),
                           (DistributedType.NO, False)]:
        assert is_sharded(FakeAcc(0, 1, b, kind)) is expected, kind


@pytest.mark.parametrize("world", [2, 3])
def test_checkpoint_gathers_on_every_process_and_writes_on_the_main_one(tmp_path, world):
    ckpt = tmp_path / "checkpoint"
    ckpt.mkdir()
    (ckpt / "stale.txt").write_text("old checkpoint")  # replaced as a whole
    models = {}
    processors = {}
    wrapped = {}
    state = {"step": 4, "torch_rng": torch.get_rng_state()}

    def fn(acc):
        r = acc.process_index
        models[r], processors[r], wrapped[r] = FakeModel(), FakeProcessor(), object()
        _save_sharded(acc, wrapped[r], models[r], processors[r], ckpt, state)

    accs = _run_ranks(world, fn)
    for acc in accs:
        r = acc.process_index
        names = [c[0] for c in acc.calls]
        assert names.count("get_state_dict") == 1 and names[0] == "get_state_dict"
        assert acc.calls[0][1] is wrapped[r]  # gathered from the prepared (wrapped) model
        assert names.count("save_state") == 1  # the optimizer shards: every process
        assert Path({c[0]: c[1:] for c in acc.calls}["save_state"][0]).name == ACC_STATE
        if r == 0:
            assert len(models[r].saved) == 1 and models[r].saved[0][1]["w"].tolist() == [7.0, 7.0]
            assert len(processors[r].saved) == 1
        else:
            assert models[r].saved == [] and processors[r].saved == []
    assert sorted(p.name for p in ckpt.iterdir()) == sorted([ACC_STATE, STATE, "processor.json", "weights.pt"])
    assert sorted(p.name for p in (ckpt / ACC_STATE).iterdir()) == [f"optimizer_shard_{r}.bin" for r in range(world)]
    assert torch.load(ckpt / STATE, weights_only=False)["step"] == 4
    assert torch.load(ckpt / "weights.pt")["w"].tolist() == [7.0, 7.0]
    assert not list(tmp_path.glob(".checkpoint.*"))  # no temp or old folder left


def test_final_model_has_no_optimizer_state(tmp_path):
    out = tmp_path / "model"
    models = {}

    def fn(acc):
        models[acc.process_index] = FakeModel()
        _save_sharded(acc, object(), models[acc.process_index], FakeProcessor(), out)

    accs = _run_ranks(2, fn)
    for acc in accs:
        assert [c[0] for c in acc.calls].count("get_state_dict") == 1
        assert "save_state" not in [c[0] for c in acc.calls]
    assert len(models[0].saved) == 1 and models[1].saved == []
    assert sorted(p.name for p in out.iterdir()) == ["processor.json", "weights.pt"]


def test_resume_loads_the_accelerate_state_on_every_process_and_its_own_rng(tmp_path):
    g = [torch.Generator().manual_seed(s).get_state() for s in (1, 2)]
    state = {"step": 3, "torch_rng": g[0], "torch_rng_ranks": g}
    seen = {}
    before = torch.get_rng_state()
    try:
        for r in (0, 1):  # sequential: torch's RNG is per process, not per thread
            acc = FakeAcc(r, 2, threading.Barrier(1))
            _load_sharded(acc, tmp_path, state)
            assert acc.calls == [("load_state", str(tmp_path / ACC_STATE))]
            seen[r] = torch.get_rng_state()
    finally:
        torch.set_rng_state(before)
    assert torch.equal(seen[0], g[0]) and torch.equal(seen[1], g[1])


def test_shipped_accelerate_configs_gather_full_weights_on_save():
    fsdp = yaml.safe_load((ROOT / "trainer/recipes/accelerate/fsdp.yaml").read_text())
    assert fsdp["distributed_type"] == "FSDP"
    assert fsdp["fsdp_config"]["fsdp_state_dict_type"] == "FULL_STATE_DICT"
    ds = yaml.safe_load((ROOT / "trainer/recipes/accelerate/deepspeed_zero3.yaml").read_text())
    assert ds["distributed_type"] == "DEEPSPEED" and ds["deepspeed_config"]["zero_stage"] == 3
    # accelerate's name for DeepSpeed's stage3_gather_16bit_weights_on_model_save: without it,
    # accelerator.get_state_dict raises under ZeRO-3
    assert ds["deepspeed_config"]["zero3_save_16bit_model"] is True


def test_the_fsdp_config_reaches_accelerate_as_fsdp2(tmp_path):
    """`accelerate launch --config_file fsdp.yaml` (the real launcher, one process) builds the FSDP
    plugin a training process gets: FSDP2, full shard, full state dicts, Qwen blocks wrapped."""
    import subprocess
    import sys

    probe = tmp_path / "probe.py"
    probe.write_text(
        "import json\nfrom accelerate.utils import FullyShardedDataParallelPlugin\n"
        "p = FullyShardedDataParallelPlugin()\n"
        "print(json.dumps({'version': p.fsdp_version, 'reshard': p.reshard_after_forward, "
        "'state': str(p.state_dict_type), 'wrap': p.transformer_cls_names_to_wrap}))\n")
    launcher = [sys.executable, "-m", "accelerate.commands.launch", "--config_file",
                str(ROOT / "trainer/recipes/accelerate/fsdp.yaml"), "--num_processes", "1", str(probe)]
    done = subprocess.run(launcher, capture_output=True, text=True, timeout=180, check=False)
    assert done.returncode == 0, done.stderr[-2000:]
    got = json.loads(done.stdout.strip().splitlines()[-1])
    assert got == {"version": 2, "reshard": True, "state": "StateDictType.FULL_STATE_DICT",
                   "wrap": ["Qwen2_5_VLDecoderLayer", "Qwen2_5_VLVisionBlock"]}
    for name, stage in (("deepspeed_zero2.yaml", 2), ("deepspeed_zero3.yaml", 3)):
        ds = yaml.safe_load((ROOT / "trainer/recipes/accelerate" / name).read_text())
        assert ds["distributed_type"] == "DEEPSPEED" and ds["deepspeed_config"]["zero_stage"] == stage
