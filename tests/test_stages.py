"""Mask DINO stage by stage against the official per-stage tensors of `r50_ins_4s` on the reference photo
(tests/data/stages, trimmed by tools/make_stage_fixtures.py; reference weights as tests/test_parity.py).

Each stage runs through the model's own stage methods on the previous stage's output, with the official
tensors as inputs where they are stored, so a mismatch shows at the stage that causes it: the pixel
decoder on our backbone features (the backbone has its own test), query selection on our pixel decoder
output, the decoder on the selected queries in the official order anchored at the official initial boxes,
post-processing on the official final logits and boxes. Tolerances: relative L2 <= 1e-4 for tensors
stored in float32, 1e-3 for those stored in float16.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch

from maskdino import build_model, get_config, load_official_checkpoint
from maskdino.image_batch import ImageBatch
from maskdino.layers.box_ops import inverse_sigmoid
from maskdino.outputs import MaskDINOOutput, Prediction
from tests.reference import (
    F16,
    F32,
    assert_instances_match,
    astronaut,
    official_checkpoint,
    order_of_reference,
    recorded_topk,
    reference_outputs,
    relative_l2,
)

STAGES = Path(__file__).resolve().parent / "data" / "stages" / "r50_ins_4s_astronaut.npz"


@pytest.fixture(scope="module")
def official() -> dict[str, np.ndarray]:
    with np.load(STAGES) as z:
        return {k: z[k] for k in z.files}


@pytest.fixture(scope="module")
def model(tmp_path_factory) -> torch.nn.Module:
    path = tmp_path_factory.mktemp("stages") / "model_final.pth"
    torch.save({"model": official_checkpoint("r50_ins_4s")}, path)
    model = build_model(get_config("r50_ins_4s")).eval()
    load_official_checkpoint(model, path)
    return model


@pytest.fixture(scope="module")
def run(model, official) -> dict:
    """Every stage once, each on what the previous one (or the official run) gives."""
    out = {}
    with torch.no_grad():
        batch = model.preprocess([astronaut()])
        out["features"] = model.pixel_decoder(model.backbone_features(batch.pixels))
        (content, anchors, interm), calls = recorded_topk(
            lambda: model.predictor.select_queries(out["features"])
        )
        order = order_of_reference(calls[0], official["query_select/topk_call0_k300"])
        out.update(order=order, anchors=anchors[0, order].sigmoid())
        # the decoder on the selected queries in the official order, anchored at the official boxes
        initial = torch.from_numpy(official["decoder/ref0"])[None]
        outputs, references, mask_features = model.predictor.run_decoder(
            content[:, order], inverse_sigmoid(initial), out["features"], None
        )
        out.update(outputs=outputs, references=references)
        out["final_masks"] = model.predictor.predict(outputs[-1], mask_features[-1])[1]
    return out


def test_pixel_decoder(run, official):
    features = run["features"]
    assert [tuple(s) for s in official["pixdec/enc_spatial_shapes"]] == [(64, 64), (32, 32), (16, 16), (8, 8)]
    assert sorted(features.spatial_shapes) == [(8, 8), (16, 16), (32, 32), (64, 64)]
    maps = {
        (h, w): level.transpose(1, 2).reshape(1, -1, h, w)  # [1, C, H, W]
        for level, (h, w) in zip(
            features.memory.split([h * w for h, w in features.spatial_shapes], 1), features.spatial_shapes
        )
    }
    for key, channels, size in [
        ("pixdec/multi_scale_0__ch0_15", 16, (64, 64)),
        ("pixdec/multi_scale_1__ch0_63", 64, (32, 32)),
        ("pixdec/multi_scale_2", 256, (16, 16)),
        ("pixdec/multi_scale_3", 256, (8, 8)),
    ]:
        assert relative_l2(maps[size][:, :channels], official[key]) <= F16, key
    mask_features = features.mask_features
    assert tuple(mask_features.shape) == (1, 256, 128, 128)
    assert relative_l2(mask_features[:, :8], official["pixdec/mask_features__ch0_7"]) <= F16
    assert relative_l2(mask_features.mean((2, 3)), official["pixdec/mask_features__chmean"]) <= F32
    assert relative_l2(mask_features.abs().mean((2, 3)), official["pixdec/mask_features__chabsmean"]) <= F32


def test_query_selection(run, official):
    # the same 300 encoder tokens, in the official order up to scores tied to fp32 rounding
    assert len(run["order"]) == 300
    # mask-enhanced initial boxes (mask2box of the selected queries' masks)
    assert relative_l2(run["anchors"], official["decoder/ref0"]) <= F32


def test_decoder_layer_by_layer(run, official):
    assert len(run["outputs"]) == 9 and len(run["references"]) == 10
    for i, output in enumerate(run["outputs"]):
        assert relative_l2(output[0, :32], official[f"decoder/hs_norm{i}"]) <= F16, f"layer {i} output"
    for i, boxes in enumerate(run["references"]):
        assert relative_l2(boxes[0], official[f"decoder/ref{i}"]) <= F32, f"layer {i} boxes"


def _official_final_outputs(run) -> tuple[dict, MaskDINOOutput, ImageBatch]:
    """The official final logits and boxes (official query order) with the decoder stage's masks, as the
    network output of a 512 x 512 batch."""
    ref = reference_outputs("r50_ins_4s")
    logits = torch.from_numpy(ref["pred_logits"])[None]
    boxes = torch.from_numpy(ref["pred_boxes"])[None]
    batch = ImageBatch(torch.zeros(1, 3, 512, 512), [(512, 512)])
    return ref, MaskDINOOutput(Prediction(logits, boxes, run["final_masks"]), []), batch


def test_postprocessing_of_the_official_outputs(model, run):
    """The official final logits and boxes (in the official query order) with the decoder stage's masks."""
    ref, outputs, batch = _official_final_outputs(run)
    with torch.no_grad():
        result = model.postprocess(outputs, batch, [tuple(int(v) for v in ref["ins/image_hw"])])[0]
    assert_instances_match(result, ref)


def test_postprocessing_without_masks_keeps_the_box_heads_boxes(model, run):
    """`model.test.mask_on` off (a detector trained on boxes): the same top-k (query, class) pairs with the
    box head's boxes, scored by class probability alone, and no masks."""
    ref, outputs, batch = _official_final_outputs(run)
    with torch.no_grad():
        with_masks = model.postprocess(outputs, batch)[0]
        model.cfg.test.mask_on = False
        try:
            detector = model.postprocess(outputs, batch)[0]
        finally:
            model.cfg.test.mask_on = True
    assert sorted(detector) == ["boxes", "labels", "scores"]
    logits = outputs.final.logits[0]
    torch.testing.assert_close(detector["scores"], logits.sigmoid().flatten().topk(100).values)
    # the same pairs: each (label, box) of one result is in the other, whose score had the mask term
    ours = {(int(label), tuple(box.tolist())) for label, box in zip(detector["labels"], detector["boxes"])}
    theirs = {
        (int(label), tuple(box.tolist())) for label, box in zip(with_masks["labels"], with_masks["boxes"])
    }
    assert ours == theirs and len(ours) == 100
    assert not torch.equal(detector["scores"], with_masks["scores"])
