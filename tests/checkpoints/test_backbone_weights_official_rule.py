"""Our name mapping equals detectron2's loading rule on the official presets.

detectron2's `align_and_update_state_dicts` (restated here from its documentation): each model tensor
takes the longest file name that equals its name or ends its name after a ".", if the shapes agree.
Applied to whole models (built on the meta device) and files with the official names and shapes, it must
pick exactly the tensors our loader loads, all inside the backbone, for the torchvision R-50.pkl and
the Swin-L 22k release.
"""

from __future__ import annotations

import torch
import torchvision

from maskdino import build_model, get_config
from maskdino.checkpoints.backbone_names import map_names, torchvision_to_detectron2


def detectron2_rule(model: dict[str, tuple], file: dict[str, tuple]) -> dict[str, str]:
    """file name -> model name, by detectron2's suffix matching."""
    chosen = {}
    for name, shape in model.items():
        candidates = [key for key in file if name == key or name.endswith("." + key)]
        if candidates:
            best = max(candidates, key=len)
            if file[best] == shape:
                chosen[best] = name
    return chosen


def shapes(state: dict[str, torch.Tensor]) -> dict[str, tuple]:
    return {k: tuple(v.shape) for k, v in state.items()}


def check_same_as_detectron2(preset: str, file: dict[str, tuple]) -> int:
    with torch.device("meta"):
        model = build_model(get_config(preset))
    official = detectron2_rule(shapes(model.state_dict()), file)
    names = map_names(model.backbone, list(file))
    own = model.backbone.state_dict()
    ours = {k: "backbone." + v for k, v in names.targets.items() if v in own}
    assert ours == official
    return len(ours)


def test_r50_pkl_loads_what_detectron2_loads():
    with torch.device("meta"):
        torchvision_r50 = torchvision.models.resnet50(weights=None)
    # the old torchvision file R-50.pkl comes from has no BatchNorm batch counters
    file = {
        torchvision_to_detectron2(k): tuple(v.shape)
        for k, v in torchvision_r50.state_dict().items()
        if not k.endswith("num_batches_tracked")
    }
    assert check_same_as_detectron2("r50_ins_4s", file) == 265
    assert check_same_as_detectron2("dimaskdino_r50_4s_12ep", file) == 265


def test_swin_l_release_loads_what_detectron2_loads():
    with torch.device("meta"):
        backbone = build_model(get_config("swinl_ins_5s")).backbone
    file = {k: tuple(v.shape) for k, v in backbone.state_dict().items() if not k.startswith("norm")}
    file |= {
        "norm.weight": (1536,),
        "norm.bias": (1536,),
        "head.weight": (21841, 1536),
        "head.bias": (21841,),
    }
    # shifted blocks of the 384 px release carry their mask; stage 4 (12 x 12 tokens) does not shift
    windows = {0: 64, 1: 16, 2: 4}
    for stage, depth in enumerate((2, 2, 18)):
        for block in range(1, depth, 2):
            file[f"layers.{stage}.blocks.{block}.attn_mask"] = (windows[stage], 144, 144)
    loaded = check_same_as_detectron2("swinl_ins_5s", file)
    assert loaded == len(backbone.state_dict()) - 8  # all but norm0..norm3
