"""MIMDetMaskRCNN: torchvision's contract, label mapping, batching, and the detectron2-shaped heads."""

from __future__ import annotations

import pytest
import torch

from maskdino.mimdet.heads import BoxPredictor, MaskPredictor, MultiLevelRoIAlign
from maskdino.mimdet.transform import DetectionTransform
from tests.mimdet.tiny import TINY_BENCHMARKING, tiny_detector

LOSSES = {"loss_objectness", "loss_rpn_box_reg", "loss_classifier", "loss_box_reg", "loss_mask"}


def two_images() -> tuple[list[torch.Tensor], list[dict[str, torch.Tensor]]]:
    torch.manual_seed(0)
    images = [torch.rand(3, 120, 160), torch.rand(3, 96, 128)]
    masks = torch.zeros(2, 120, 160, dtype=torch.bool)
    masks[0, 10:50, 10:60] = True
    masks[1, 20:110, 70:150] = True
    targets = [
        {"labels": torch.tensor([0, 79]), "boxes": torch.tensor([[10.0, 10, 60, 50], [70, 20, 150, 110]]), "masks": masks},
        {"labels": torch.tensor([5]), "boxes": torch.tensor([[5.0, 5, 50, 90]]), "masks": torch.ones(1, 96, 128, dtype=torch.bool)},
    ]  # fmt: skip
    return images, targets


def test_training_returns_the_five_losses_and_backpropagates():
    torch.manual_seed(0)  # the initial losses depend on the random init and the sampled proposals
    model = tiny_detector().train()
    images, targets = two_images()
    losses = model(images, targets)
    assert set(losses) == LOSSES
    assert all(torch.isfinite(v) and v.dim() == 0 for v in losses.values())
    # at initialisation: objectness and mask logits are ~0 (BCE ~ ln 2), 81-way softmax ~ uniform
    assert abs(losses["loss_objectness"].item() - 0.693) < 0.02
    assert abs(losses["loss_mask"].item() - 0.693) < 0.02
    assert abs(losses["loss_classifier"].item() - 4.394) < 0.05
    sum(losses.values()).backward()
    assert model.backbone.blocks[0].attn.qkv.weight.grad.abs().sum() > 0
    assert model.roi_heads.mask_predictor.predictor.weight.grad.abs().sum() > 0


def test_eval_returns_detections_at_the_input_size_or_the_requested_size():
    model = tiny_detector(
        "model.mask_rcnn.score_thresh=0"
    ).eval()  # untrained scores sit near 1/81, under the 0.05 default
    images, _ = two_images()
    with torch.no_grad():
        detections = model(images)
        doubled = model(images, output_sizes=[(240, 320), (192, 256)])
    for image, det, big in zip(images, detections, doubled):
        n = len(det["boxes"])
        assert 0 < n <= 100
        assert det["boxes"].shape == (n, 4) and det["scores"].shape == (n,)
        assert (
            det["labels"].dtype == torch.int64
            and int(det["labels"].min()) >= 0
            and int(det["labels"].max()) < 80
        )
        assert det["masks"].dtype == torch.bool and det["masks"].shape == (n, *image.shape[-2:])
        assert torch.all(det["scores"][:-1] >= det["scores"][1:])
        assert big["masks"].shape == (n, image.shape[1] * 2, image.shape[2] * 2)
        torch.testing.assert_close(big["boxes"], det["boxes"] * 2)


def test_bad_inputs_are_named():
    model = tiny_detector().train()
    images, targets = two_images()
    with pytest.raises(
        ValueError, match=r"targets\[1\]\['labels'\] must be int64 contiguous ids in \[0, 80\)"
    ):
        model(images, [targets[0], {**targets[1], "labels": torch.tensor([80])}])
    with pytest.raises(KeyError, match=r"targets\[0\] lacks \['masks'\]"):
        model(images, [{k: v for k, v in targets[0].items() if k != "masks"}, targets[1]])
    with pytest.raises(ValueError, match=r"image 0 has dtype torch.uint8; expected float values in \[0, 1\]"):
        model([(images[0] * 255).to(torch.uint8)], targets[:1])
    with pytest.raises(ValueError, match="training needs targets"):
        model(images)


def test_transform_normalises_then_pads_with_zeros():
    transform = DetectionTransform((123.675, 116.28, 103.53), (58.395, 57.12, 57.375), 32)
    image = torch.full((3, 100, 150), 0.485)  # the red mean: normalises to 0 in channel 0
    for mode in (transform.train(), transform.eval()):
        batch, sizes = mode([image])
        assert sizes == [(100, 150)] and batch.shape == (1, 3, 128, 160)
        assert batch[0, 0, :100, :150].abs().max() < 1e-6 and batch[0, :, 100:].abs().max() == 0


def test_fixed_square_is_padded_with_128_before_normalising():
    # the LSJ test mapper: FixedSizeCrop pads the resized uint8 image with 128, then the model normalises
    transform = DetectionTransform((100.0, 110.0, 120.0), (50.0, 40.0, 20.0), 32, fixed_input_size=64)
    image = torch.rand(3, 40, 60)
    batch, sizes = transform([image])
    assert batch.shape == (1, 3, 64, 64) and sizes == [(64, 64)]  # the heads see the whole square
    mean, std = torch.tensor([100.0, 110.0, 120.0]), torch.tensor([50.0, 40.0, 20.0])
    torch.testing.assert_close(
        batch[0, :, :40, :60], (image * 255 - mean[:, None, None]) / std[:, None, None]
    )
    torch.testing.assert_close(batch[0, :, 40:, :], ((128 - mean) / std)[:, None, None].expand(-1, 24, 64))
    torch.testing.assert_close(batch[0, :, :, 60:], ((128 - mean) / std)[:, None, None].expand(-1, 64, 4))
    with pytest.raises(ValueError, match="larger than the fixed input size 64"):
        transform([torch.rand(3, 40, 70)])


def test_postprocess_rescales_per_axis_or_by_the_larger_ratio_on_the_square():
    boxes = torch.tensor([[10.0, 20.0, 30.0, 60.0], [50.0, 50.0, 50.0, 60.0], [60.0, 10.0, 70.0, 30.0]])
    det = {"boxes": boxes, "labels": torch.tensor([1, 2, 3]), "scores": torch.tensor([0.9, 0.8, 0.7])}
    per_axis = DetectionTransform((0.0,) * 3, (1.0,) * 3, 32)
    (out,) = per_axis.postprocess([det], [(64, 80)], [(32, 160)])  # x * 2, y / 2
    # the zero-width box is dropped, the last is clipped to the 160 px width
    torch.testing.assert_close(
        out["boxes"], torch.tensor([[20.0, 10.0, 60.0, 30.0], [120.0, 5.0, 140.0, 15.0]])
    )
    assert out["labels"].tolist() == [0, 2] and out["scores"].tolist() == pytest.approx([0.9, 0.7])
    square = DetectionTransform((0.0,) * 3, (1.0,) * 3, 32, fixed_input_size=64)
    # a 32 x 64 content resized from 16 x 32: both boxes scale by max(32, 16) / 64 = 0.5
    (out,) = square.postprocess([det], [(64, 64)], [(16, 32)])
    torch.testing.assert_close(out["boxes"], torch.tensor([[5.0, 10.0, 15.0, 16.0], [30.0, 5.0, 32.0, 15.0]]))


def test_benchmarking_backbone_gets_its_fixed_square():
    model = tiny_detector(*TINY_BENCHMARKING, "model.mask_rcnn.score_thresh=0").eval()
    assert model.transform.fixed_input_size == 64
    with torch.no_grad():
        (det,) = model([torch.rand(3, 48, 64)])
    assert det["masks"].shape[1:] == (48, 64)


def test_box_predictor_reorders_detectron2_outputs_for_torchvision():
    predictor = BoxPredictor(4, num_classes=3)
    with torch.no_grad():
        predictor.cls_score.weight.zero_()
        predictor.cls_score.bias.copy_(torch.tensor([0.0, 1.0, 2.0, 9.0]))  # detectron2: background last
        predictor.bbox_pred.weight.zero_()
        predictor.bbox_pred.bias.copy_(torch.arange(12.0))
    scores, deltas = predictor(torch.randn(2, 4))
    torch.testing.assert_close(scores[0], torch.tensor([9.0, 0.0, 1.0, 2.0]))
    torch.testing.assert_close(deltas[0], torch.cat([torch.zeros(4), torch.arange(12.0)]))


def test_mask_predictor_puts_class_c_at_channel_c_plus_1():
    predictor = MaskPredictor(8, 8, num_classes=3)
    logits = predictor(torch.randn(5, 8, 14, 14))
    assert logits.shape == (5, 4, 28, 28)
    assert logits[:, 0].abs().max() == 0
    direct = predictor.predictor(torch.relu(predictor.deconv(torch.zeros(1, 8, 14, 14))))
    torch.testing.assert_close(predictor(torch.zeros(1, 8, 14, 14))[:, 1:], direct)


def test_rois_are_pooled_from_the_level_of_their_size():
    pooler = MultiLevelRoIAlign(("p2", "p3", "p4", "p5"), (4, 8, 16, 32), output_size=2)
    features = {name: torch.full((1, 1, 64, 64), float(level)) for level, name in enumerate(pooler.names)}
    sides = [20.0, 56.0, 112.0, 223.0, 224.0, 447.0, 448.0, 900.0]
    boxes = [torch.tensor([[0.0, 0.0, side, side] for side in sides])]
    levels = pooler(features, boxes)[:, 0, 0, 0]
    # level = floor(4 + log2(side / 224)) clamped to p2..p5 (FPN eq. 1)
    torch.testing.assert_close(levels, torch.tensor([0.0, 0.0, 1.0, 1.0, 2.0, 2.0, 3.0, 3.0]))
