"""The detectron2 inference pieces of the MIMDet detectors: anchors, box decoding, proposal selection,
box inference and mask pasting, on hand-made inputs with known answers."""

from __future__ import annotations

import math

import pytest
import torch

from maskdino.backbones import mimdet as mimdet_backbone
from maskdino.config import MaskRCNNConfig
from maskdino.mimdet.anchors import AnchorGenerator, cell_anchors
from maskdino.mimdet.boxes import SCALE_CLAMP, BoxDecoder
from maskdino.mimdet.mask_paste import paste_masks_in_image
from maskdino.mimdet.rpn import RPN
from tests.mimdet.tiny import tiny_detector


def test_cell_anchors_are_not_rounded():
    anchors = cell_anchors(32, (0.5, 1.0, 2.0))
    half = 16 * math.sqrt(2)  # 22.627: a 32 px anchor of ratio 0.5 is 45.25 wide and 22.63 high
    expected = torch.tensor(
        [[-half, -half / 2, half, half / 2], [-16, -16, 16, 16], [-half / 2, -half, half / 2, half]]
    )
    torch.testing.assert_close(anchors, expected)


def test_anchor_grid_steps_by_the_configured_stride():
    # an 800 x 1216 batch: p5 is 25 x 38 and p6 13 x 19; 800 / 13 would make torchvision's P6 stride 61
    generator = AnchorGenerator((256, 512), (0.5, 1.0, 2.0), (32, 64))
    p5, p6 = generator([torch.zeros(1, 1, 25, 38), torch.zeros(1, 1, 13, 19)])
    assert p5.shape == (25 * 38 * 3, 4) and p6.shape == (13 * 19 * 3, 4)
    centres = ((p6[:, :2] + p6[:, 2:]) / 2).view(13, 19, 3, 2)  # location-major, anchor-minor
    assert torch.equal(centres[12, 18, 0], torch.tensor([18 * 64.0, 12 * 64.0]))
    torch.testing.assert_close(centres[:, :, 0], centres[:, :, 2])
    torch.testing.assert_close(
        p6.view(13, 19, 3, 4)[0, 1], cell_anchors(512, (0.5, 1.0, 2.0)) + torch.tensor([64.0, 0, 64, 0])
    )


def test_box_decoder_applies_weighted_deltas_with_the_scale_clamp():
    decode = BoxDecoder((10.0, 10.0, 5.0, 5.0))
    boxes = torch.tensor([[10.0, 20.0, 50.0, 40.0]])  # centre (30, 30), 40 x 20
    torch.testing.assert_close(decode(torch.zeros(1, 8), boxes), boxes.repeat(1, 2))
    # dx = 1 / 10 of the width, dw = log 2 doubles it; a huge dh is clamped at log(1000 / 16)
    deltas = torch.tensor([[1.0, 0.0, 5 * math.log(2.0), 0.0, 0.0, 0.0, 0.0, 1000.0]])
    out = decode(deltas, boxes).view(2, 4)
    torch.testing.assert_close(out[0], torch.tensor([-6.0, 20.0, 74.0, 40.0]))
    half_height = 10 * math.exp(SCALE_CLAMP)
    torch.testing.assert_close(out[1], torch.tensor([10.0, 30 - half_height, 50.0, 30 + half_height]))


def test_proposals_are_chosen_per_level_then_suppressed_per_level():
    cfg = MaskRCNNConfig(rpn_pre_nms_top_n_test=2, rpn_post_nms_top_n_test=3, rpn_nms_thresh=0.7)
    rpn = RPN(AnchorGenerator((32, 64), (1.0,), (4, 8)), 8, cfg).eval()
    box = [10.0, 10.0, 50.0, 50.0]
    level0 = torch.tensor([[box, box, [0.0, 0.0, 5.0, 5.0], [-20.0, 10.0, -5.0, 30.0]]])  # [1, 4, 4]
    level1 = torch.tensor([[box, [60.0, 60.0, 90.0, 120.0]]])
    logits0, logits1 = torch.tensor([[5.0, 4.0, 3.0, 9.0]]), torch.tensor([[1.0, 0.5]])
    (boxes,), (scores,) = rpn.select_proposals([level0, level1], [logits0, logits1], [(100, 80)])
    # level 0 keeps its top 2 (9: outside the image, clipped to zero width and dropped; 5), level 1 both;
    # the duplicate of `box` on level 1 survives NMS (levels are suppressed separately); the 120 is clipped
    torch.testing.assert_close(scores, torch.tensor([5.0, 1.0, 0.5]))
    torch.testing.assert_close(boxes, torch.tensor([box, box, [60.0, 60.0, 80.0, 100.0]]))


def test_box_inference_scores_every_class_and_suppresses_within_classes():
    model = tiny_detector("model.mask_rcnn.score_thresh=0.2", "model.mask_rcnn.nms_thresh=0.5")
    heads = model.roi_heads
    heads.detections_per_img = 3
    proposals = [
        torch.tensor([[10.0, 10.0, 50.0, 50.0], [12.0, 10.0, 52.0, 50.0], [40.0, 0.0, 40.004, 30.0]])
    ]
    # background first (torchvision layout); 80 classes, nearly all mass on classes 0 and 1 (labels 1, 2)
    logits = torch.full((3, 81), -30.0)
    logits[:, [1, 2]] = torch.tensor(
        [[math.log(0.6), math.log(0.4)], [math.log(0.7), math.log(0.3)], [0.0, -30.0]]
    )
    boxes, scores, labels = heads.postprocess_detections(
        logits, torch.zeros(3, 81 * 4), proposals, [(40, 56)]
    )
    # class 0: proposals 1 and 0 overlap (IoU 0.9), only 0.7 stays; class 1: 0.4 (0.3 overlaps it);
    # the 0.004 px wide proposal stays (torchvision would drop it under 0.01 px); top 3 by score
    torch.testing.assert_close(scores[0], torch.tensor([1.0, 0.7, 0.4]))
    assert labels[0].tolist() == [1, 1, 2]
    torch.testing.assert_close(
        boxes[0][1], torch.tensor([12.0, 10.0, 52.0, 40.0])
    )  # clipped to the 40 px height


def test_pasted_full_masks_cover_the_pixels_whose_centres_lie_in_the_box():
    # no edge on a pixel centre, where the sample is 0.5 up to rounding
    boxes = torch.tensor([[10.3, 20.6, 30.2, 40.9], [-5.0, 3.4, 7.7, 9.2], [60.0, 50.0, 80.0, 64.0]])
    masks = torch.ones(3, 28, 28)
    pasted = paste_masks_in_image(masks, boxes, (64, 72))
    ys, xs = torch.arange(64.0) + 0.5, torch.arange(72.0) + 0.5
    for mask, (x0, y0, x1, y1) in zip(pasted, boxes):
        inside = ((ys >= y0) & (ys <= y1))[:, None] & ((xs >= x0) & (xs <= x1))[None, :]
        assert torch.equal(mask, inside)
    # the same masks whether pasted box by box (CPU) or in whole-image chunks (GPU)
    logits = torch.randn(3, 28, 28, generator=torch.Generator().manual_seed(0))
    assert torch.equal(
        paste_masks_in_image(logits.sigmoid(), boxes, (64, 72), per_box=True),
        paste_masks_in_image(logits.sigmoid(), boxes, (64, 72), per_box=False),
    )


def test_biased_attention_in_query_chunks_equals_one_call(monkeypatch):
    attention = mimdet_backbone.Attention(32, 4)
    x, bias = torch.randn(2, 50, 32), torch.randn(4, 50, 50)
    whole = attention(x, bias)
    monkeypatch.setattr(mimdet_backbone, "BIASED_QUERY_CHUNK", 16)
    torch.testing.assert_close(attention(x, bias), whole, rtol=1e-6, atol=1e-6)


@pytest.mark.parametrize("per_box", [True, False])
def test_no_masks_paste_to_an_empty_stack(per_box):
    pasted = paste_masks_in_image(torch.zeros(0, 28, 28), torch.zeros(0, 4), (10, 12), per_box=per_box)
    assert pasted.shape == (0, 10, 12) and pasted.dtype == torch.bool
