"""Access to the bundled official-reference fixtures (tests/data/reference, built by
tools/make_parity_fixtures.py from the project's shared reference set)."""

from __future__ import annotations

import gzip
import json
from collections.abc import Callable
from functools import cache
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image
from pycocotools import mask as mask_util

from maskdino.checkpoints.official import convert_official_state_dict
from tests.reference_fill import official_state_dict

DATA = Path(__file__).resolve().parent / "data"
REFERENCE = DATA / "reference"

# reference name -> our preset
PRESET_OF = {
    "r50_ins_4s": "r50_ins_4s",
    "r50_ins_3s_ds1_bitmask": "r50_ins_4s_bitmask",
    "r50_ins_hid1024_3s": "r50_ins_hid1024_3s",
    "r50_ins_3s_ds2_5lvl": "r50_ins_5s",
    "r50_ins_res2to5_enc": "r50_ins_res2to5_enc",
    "r50_pan": "r50_pan",
    "r50_ade_sem": "r50_ade_sem",
    "r50_city_sem": "r50_city_sem",
    "swinl_ins_5s": "swinl_ins_5s",
    "swinl_ins_5s_hid1024": "swinl_ins_5s_hid1024",
    "di_r50_12ep": "dimaskdino_r50_4s_12ep",
}


@cache
def inventory(name: str) -> dict:
    with gzip.open(REFERENCE / f"keys_{name}.json.gz", "rt") as f:
        return json.load(f)


def reference_outputs(name: str) -> dict:
    """Arrays of `ref_<name>.npz`; `pan/segments_info` (a JSON string there) is parsed."""
    with np.load(REFERENCE / f"ref_{name}.npz") as z:
        ref = {k: z[k] for k in z.files}
    if "pan/segments_info" in ref:
        ref["pan/segments_info"] = json.loads(str(ref["pan/segments_info"]))
    return ref


def astronaut() -> torch.Tensor:
    """The reference input (skimage's astronaut, 512x512 RGB) as float `[3, H, W]` in [0, 1]."""
    array = np.asarray(Image.open(DATA / "astronaut.png").convert("RGB"))
    return torch.from_numpy(array.copy()).permute(2, 0, 1).float() / 255


def official_checkpoint(name: str) -> dict[str, torch.Tensor]:
    """An official-layout state dict filled with the reference weights (integer buffers omitted)."""
    return {k: torch.from_numpy(v) for k, v in official_state_dict(inventory(name)).items()}


@cache
def official_names(name: str) -> dict[str, tuple[str, ...]]:
    """Our parameter/buffer name -> every official name of that tensor in inventory `name`, found by
    passing a state dict of numbered scalars through the checkpoint conversion (aliases share a number)."""
    group_of = {alias: min(group) for group in inventory(name)["alias_groups"] for alias in group}
    members: dict[str, list[str]] = {}
    for official, _, dtype in inventory(name)["keys"]:
        if dtype.startswith("float"):
            members.setdefault(group_of.get(official, official), []).append(official)
    groups = list(members.values())
    state = {official: torch.tensor(float(i)) for i, group in enumerate(groups) for official in group}
    converted = convert_official_state_dict(state)
    return {ours: tuple(groups[int(number)]) for ours, number in converted.items()}


# Parity tolerances (relative L2): float32 rounding, and fp16-like for maps through many layers.
F32, F16 = 1e-4, 1e-3


def relative_l2(ours, theirs) -> float:
    a = np.asarray(ours, dtype=np.float64)
    b = np.asarray(theirs, dtype=np.float64)
    return float(np.linalg.norm(a - b) / max(np.linalg.norm(b), 1e-12))


def recorded_topk(run: Callable):
    """Call `run()` and record (values, indices) of every torch.topk it makes, for the only image."""
    calls = []
    topk = torch.topk

    def recording_topk(*args, **kwargs):
        result = topk(*args, **kwargs)
        calls.append((result[0][0], result[1][0]))
        return result

    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(torch, "topk", recording_topk)
        output = run()
    return output, calls


def order_of_reference(call, ref_indices: np.ndarray, our_numbering: np.ndarray | None = None) -> np.ndarray:
    """Our position of each index the reference selected (in the reference's order).

    Both runs must select the same indices in the same order, except among scores tied to fp32 rounding,
    whose order is arbitrary (the first call has such a pair at ranks 482/483). `our_numbering` maps our
    candidate numbering to the reference's when the candidates are an earlier call's output.
    """
    values, indices = call[0].numpy(), call[1].numpy()
    if our_numbering is not None:
        indices = our_numbering[indices]
    position = {int(i): p for p, i in enumerate(indices)}
    assert set(position) >= set(ref_indices.tolist())
    order = np.array([position[int(i)] for i in ref_indices])
    np.testing.assert_allclose(values[order], values[: len(order)], rtol=1e-5, atol=0)
    return order


def _rle(masks: torch.Tensor) -> list[str]:
    return [mask_util.encode(np.asfortranarray(m.numpy().astype(np.uint8)))["counts"].decode() for m in masks]


def _sorted(scores, classes, boxes, rles):
    """Score-sorted (the official top-k is not), ties broken by class then box, as ref_io.sort_instances."""
    order = np.lexsort((boxes[:, 3], boxes[:, 2], boxes[:, 1], boxes[:, 0], classes, -scores))
    return scores[order], classes[order], boxes[order], [rles[i] for i in order]


def assert_instances_match(result: dict, ref: dict) -> None:
    """Same top-100 instances: scores within 2e-5, equal classes, boxes within 1e-2 px, mask IoU >= 0.999."""
    hw = [int(v) for v in ref["ins/image_hw"]]
    theirs = _sorted(ref["ins/scores"], ref["ins/classes"], ref["ins/boxes"], list(ref["ins/masks_rle"]))
    ours = _sorted(
        result["scores"].numpy(), result["labels"].numpy(), result["boxes"].numpy(), _rle(result["masks"])
    )
    assert len(ours[0]) == len(theirs[0]) == 100
    np.testing.assert_allclose(ours[0], theirs[0], atol=2e-5)
    np.testing.assert_array_equal(ours[1], theirs[1])
    np.testing.assert_allclose(ours[2], theirs[2], atol=1e-2)
    for a, b in zip(ours[3], theirs[3]):
        rle = [{"size": hw, "counts": x.encode()} for x in (a, b)]
        assert mask_util.iou(rle[:1], rle[1:], [0])[0, 0] >= 0.999
