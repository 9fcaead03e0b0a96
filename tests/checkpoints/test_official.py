"""Official checkpoint conversion: every official state-dict inventory maps strictly onto its preset, and
broken or mismatched checkpoints fail with a message that says what is wrong."""

from __future__ import annotations

import pytest
import torch

from maskdino import build_model, get_config, load_official_checkpoint
from maskdino.checkpoints import (
    CheckpointMismatchError,
    UnreadableCheckpointError,
    convert_official_state_dict,
)
from tests.reference import PRESET_OF, inventory, official_checkpoint

INVENTORIES = list(PRESET_OF)


def meta_model(preset: str) -> torch.nn.Module:
    with torch.device("meta"):
        return build_model(get_config(preset))


@pytest.mark.parametrize("name", INVENTORIES)
def test_inventory_converts_strictly_and_counts_match(name):
    inv = inventory(name)
    official = {key: torch.empty(shape, device="meta") for key, shape, _ in inv["keys"]}
    # aliases on the meta device cannot be compared by value; share the canonical tensor as the official model does
    for group in inv["alias_groups"]:
        first = sorted(group)[0]
        for alias in group:
            official[alias] = official[first]
    converted = {k: tuple(v.shape) for k, v in convert_official_state_dict(official).items()}
    model = meta_model(PRESET_OF[name])
    ours = {k: tuple(v.shape) for k, v in model.state_dict().items()}
    assert sorted(set(ours) - set(converted)) == []
    assert sorted(set(converted) - set(ours)) == []
    assert {k: v for k, v in converted.items() if ours[k] != v} == {}
    assert sum(p.numel() for p in model.parameters()) == inv["total_params"]


def test_alias_mismatch_is_reported():
    state = official_checkpoint("r50_ins_hid1024_3s")
    state["sem_seg_head.predictor.bbox_embed.3.layers.0.bias"] = torch.zeros(256)
    with pytest.raises(CheckpointMismatchError, match=r"bbox_embed\.3\.layers\.0\.bias.*same tensor"):
        convert_official_state_dict(state)


def test_checkpoint_of_another_preset_names_the_right_one():
    model = build_model(get_config("r50_ins_4s"))
    with pytest.raises(CheckpointMismatchError) as err:
        load_official_checkpoint(model, official_checkpoint("r50_ade_sem"))
    message = str(err.value)
    assert (
        "shape mismatch (84)" in message
        and "linear1.weight: checkpoint (1024, 256) vs model (2048, 256)" in message
    )
    assert "missing in checkpoint" in message and "predictor.enc_output.weight" in message
    assert "'r50_ade_sem'" in message


def test_corrupt_and_missing_files(tmp_path):
    model = build_model(get_config("demo"))
    with pytest.raises(FileNotFoundError, match="nope.pth"):
        load_official_checkpoint(model, tmp_path / "nope.pth")
    good = tmp_path / "good.pth"
    torch.save({"model": {"x": torch.zeros(3)}}, good)
    truncated = tmp_path / "truncated.pth"
    truncated.write_bytes(good.read_bytes()[:100])
    with pytest.raises(UnreadableCheckpointError, match="truncated.pth.*corrupt"):
        load_official_checkpoint(model, truncated)


def test_pickled_code_is_never_executed(tmp_path):
    class Payload:
        def __reduce__(self):
            return (print, ("pwned",))

    path = tmp_path / "evil.pth"
    torch.save({"model": {"x": torch.zeros(1)}, "extra": Payload()}, path)
    with pytest.raises(UnreadableCheckpointError, match="weights_only"):
        load_official_checkpoint(build_model(get_config("demo")), path)
