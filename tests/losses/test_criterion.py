"""Set criterion: each loss against a hand-computed value, the official key set, weights and gradients."""

from __future__ import annotations

import math

import torch
from torch import nn

from maskdino.config import ModelConfig
from maskdino.decoder.denoising_queries import build_denoising_queries, split_denoising_outputs
from maskdino.losses.criterion import SetCriterion, build_criterion, official_weight_dict
from maskdino.losses.matcher import HungarianMatcher

BASE_KEYS = ("loss_ce", "loss_mask", "loss_dice", "loss_bbox", "loss_giou")
NUM_CLASSES = 5


def _criterion(**kwargs) -> SetCriterion:
    matcher = HungarianMatcher(4.0, 5.0, 2.0, 5.0, 5.0, num_points=16)
    options = {"num_classes": NUM_CLASSES, "matcher": matcher, "weight_dict": {}, "num_points": 100} | kwargs
    return SetCriterion(**options)


def test_focal_classification_hand_value() -> None:
    logits = torch.zeros(1, 2, 2)  # every probability is 0.5
    targets = [{"labels": torch.tensor([0])}]
    indices = [(torch.tensor([1]), torch.tensor([0]))]
    loss = _criterion(num_classes=2).loss_labels({"pred_logits": logits}, targets, indices, 1.0)["loss_ce"]
    # one positive (0.25 * 0.5^2 * ln 2) and three negatives (0.75 * 0.5^2 * ln 2); mean over Q times Q = sum
    expected = (0.25 * 0.25 + 3 * 0.75 * 0.25) * math.log(2)
    assert math.isclose(expected, 0.433217, abs_tol=1e-6)
    assert math.isclose(loss.item(), expected, rel_tol=1e-6)


def test_semantic_ce_with_no_object_weight() -> None:
    logits = torch.tensor([[[2.0, 0.0, 0.0], [0.0, 0.0, 1.0]]])  # C = 2 plus the no-object logit
    targets = [{"labels": torch.tensor([0])}]
    indices = [(torch.tensor([0]), torch.tensor([0]))]
    criterion = _criterion(num_classes=2, semantic_ce_loss=True, no_object_weight=0.1)
    loss = criterion.loss_labels({"pred_logits": logits}, targets, indices, 1.0)["loss_ce"]
    matched = math.log(1 + 2 * math.exp(-2))  # -log softmax(2, 0, 0)[0]
    unmatched = math.log(1 + 2 * math.exp(-1))  # -log softmax(0, 0, 1)[2], weighted 0.1
    expected = (matched + 0.1 * unmatched) / 1.1
    assert math.isclose(expected, 0.267899, abs_tol=1e-6)
    assert math.isclose(loss.item(), expected, rel_tol=1e-6)


def test_box_losses_hand_value() -> None:
    outputs = {"pred_boxes": torch.tensor([[[0.1, 0.1, 0.1, 0.1], [0.5, 0.5, 0.2, 0.2]]])}
    targets = [{"labels": torch.tensor([1]), "boxes": torch.tensor([[0.5, 0.5, 0.4, 0.4]])}]
    indices = [(torch.tensor([1]), torch.tensor([0]))]
    losses = _criterion().loss_boxes(outputs, targets, indices, 2.0)
    # L1 = 0.2 + 0.2; the prediction sits inside the target: IoU = 0.04 / 0.16 = GIoU
    assert math.isclose(losses["loss_bbox"].item(), 0.4 / 2, rel_tol=1e-6)
    assert math.isclose(losses["loss_giou"].item(), 0.75 / 2, rel_tol=1e-4)


def test_panoptic_box_loss_skips_stuff() -> None:
    outputs = {"pred_boxes": torch.tensor([[[0.5, 0.5, 0.2, 0.2], [0.2, 0.2, 0.1, 0.1]]])}
    boxes = torch.tensor([[0.5, 0.5, 0.4, 0.4], [0.8, 0.8, 0.1, 0.1]])
    targets = [{"labels": torch.tensor([3, 100]), "boxes": boxes}]
    indices = [(torch.tensor([0, 1]), torch.tensor([0, 1]))]
    plain = _criterion().loss_boxes(outputs, targets, indices, 2.0)
    panoptic = _criterion(thing_classes=tuple(range(80))).loss_boxes(outputs, targets, indices, 2.0)
    assert math.isclose(plain["loss_bbox"].item(), (0.4 + 1.2) / 2, rel_tol=1e-6)
    assert math.isclose(panoptic["loss_bbox"].item(), 0.4 / 2, rel_tol=1e-6)  # still / all 2 masks
    assert math.isclose(panoptic["loss_giou"].item(), 0.75 / 2, rel_tol=1e-4)
    # the config's thing classes decide, not COCO's 80: here 100 is the thing and 3 the stuff
    custom = _criterion(thing_classes=(100,)).loss_boxes(outputs, targets, indices, 2.0)
    assert math.isclose(custom["loss_bbox"].item(), 1.2 / 2, rel_tol=1e-6)


def test_pano_box_loss_takes_the_configs_thing_classes() -> None:
    cfg = ModelConfig(num_classes=5, thing_classes=(1, 3))
    cfg.loss.pano_box_loss = True
    criterion = build_criterion(cfg)
    assert criterion.thing_classes == (1, 3) and criterion.matcher.thing_classes == (1, 3)
    cfg.thing_classes = ()  # every class is a thing
    assert build_criterion(cfg).thing_classes == (0, 1, 2, 3, 4)


def test_mask_losses_hand_value() -> None:
    outputs = {"pred_masks": torch.zeros(1, 3, 8, 8)}  # sigmoid 0.5 everywhere
    targets = [{"labels": torch.tensor([0, 1]), "masks": torch.zeros(2, 32, 32, dtype=torch.bool)}]
    indices = [(torch.tensor([0, 2]), torch.tensor([1, 0]))]
    losses = _criterion(num_points=100).loss_masks(outputs, targets, indices, 2.0)
    # BCE of logit 0 against 0 is ln 2 at every point; dice = 1 - 1 / (0.5 * 100 + 1) per mask
    assert math.isclose(losses["loss_mask"].item(), math.log(2), rel_tol=1e-6)
    assert math.isclose(losses["loss_dice"].item(), 1 - 1 / 51, rel_tol=1e-6)


def _config(**decoder) -> ModelConfig:
    cfg = ModelConfig(num_classes=NUM_CLASSES)
    cfg.decoder.num_layers = 3
    cfg.decoder.num_queries = 20
    cfg.loss.num_points = 64
    for key, value in decoder.items():
        setattr(cfg.decoder, key, value)
    return cfg


def _targets() -> list[dict]:
    boxes = [torch.tensor([[0.3, 0.3, 0.2, 0.2], [0.6, 0.5, 0.4, 0.3], [0.5, 0.8, 0.5, 0.2]])]
    boxes.append(torch.tensor([[0.5, 0.5, 0.6, 0.6]]))
    targets = []
    for labels, image_boxes in zip(([1, 4, 0], [2]), boxes):
        masks = torch.zeros(len(labels), 64, 64, dtype=torch.bool)
        for k, (cx, cy, w, h) in enumerate((image_boxes * 64).round().int().tolist()):
            masks[k, cy - h // 2 : cy + h // 2, cx - w // 2 : cx + w // 2] = True
        targets.append({"labels": torch.tensor(labels), "boxes": image_boxes, "masks": masks})
    return targets


def _layer(num_queries: int) -> dict:
    return {
        "pred_logits": torch.randn(2, num_queries, NUM_CLASSES, requires_grad=True),
        "pred_boxes": torch.rand(2, num_queries, 4).clamp(0.05, 0.95).requires_grad_(),
        "pred_masks": torch.randn(2, num_queries, 16, 16, requires_grad=True),
    }


def _decoder_outputs(num_layers: int, num_queries: int, pad: int, two_stage: bool = True) -> tuple:
    """Fake predictions (initial + one per layer) over DN + matching queries, split as the decoder does."""
    leaves = [_layer(pad + num_queries) for _ in range(num_layers + 1)]
    (classes, boxes, masks), dn_outputs = split_denoising_outputs(
        [p["pred_logits"] for p in leaves],
        [p["pred_boxes"] for p in leaves],
        [p["pred_masks"] for p in leaves],
        pad,
    )
    layers = [{"pred_logits": c, "pred_boxes": b, "pred_masks": m} for c, b, m in zip(classes, boxes, masks)]
    outputs = {**layers[-1], "aux_outputs": layers[:-1]}
    if two_stage:
        interm = _layer(num_queries)
        outputs["interm_outputs"] = interm
        leaves.append(interm)
    return outputs, dn_outputs, leaves


def _expected_keys(num_aux: int, dn_aux: range, interm: bool) -> set[str]:
    keys = set(BASE_KEYS) | {k + "_dn" for k in BASE_KEYS}
    keys |= {f"{k}_{i}" for k in BASE_KEYS for i in range(num_aux)}
    keys |= {f"{k}_dn_{i}" for k in BASE_KEYS for i in dn_aux}
    if interm:
        keys |= {k + "_interm" for k in BASE_KEYS}
    return keys


def test_end_to_end_with_denoising() -> None:
    torch.manual_seed(0)
    cfg = _config()
    criterion = build_criterion(cfg)
    targets = _targets()
    content, _, _, meta = build_denoising_queries(
        targets, nn.Embedding(NUM_CLASSES, 8), NUM_CLASSES, 20, dn_num=10, hidden_dim=8
    )
    assert meta.pad_size == 9
    outputs, dn_outputs, leaves = _decoder_outputs(3, 20, meta.pad_size)
    losses = criterion(outputs, targets, dn_meta=meta, dn_outputs=dn_outputs)

    assert set(losses) == _expected_keys(3, range(3), interm=True)
    assert len(losses) == 45 and set(losses) <= set(criterion.weight_dict)
    assert all(torch.isfinite(v) and v > 0 for v in losses.values())
    total = sum(criterion.weight_dict[k] * v for k, v in losses.items())
    total.backward()
    for leaf in leaves:
        for name, tensor in leaf.items():
            grad = tensor.grad
            assert grad is not None and grad.abs().sum() > 0, name
            if tensor.shape[1] > 20:  # DN queries and matching queries are both supervised
                assert grad[:, : meta.pad_size].abs().sum() > 0 and grad[:, meta.pad_size :].abs().sum() > 0


def test_end_to_end_without_denoising_gives_zero_dn_losses() -> None:
    torch.manual_seed(1)
    criterion = build_criterion(_config())
    outputs, _, leaves = _decoder_outputs(3, 20, pad=0)
    losses = criterion(outputs, _targets())
    assert set(losses) == _expected_keys(3, range(3), interm=True)
    assert all(losses[k].item() == 0 for k in losses if "_dn" in k)
    assert all(torch.isfinite(v) and v > 0 for k, v in losses.items() if "_dn" not in k)
    sum(losses.values()).backward()
    assert all(t.grad is not None and t.grad.abs().sum() > 0 for leaf in leaves for t in leaf.values())


def test_single_stage_skips_dn_loss_of_initial_prediction() -> None:
    torch.manual_seed(2)
    criterion = build_criterion(_config(two_stage=False))
    targets = _targets()
    *_, meta = build_denoising_queries(
        targets, nn.Embedding(NUM_CLASSES, 8), NUM_CLASSES, 20, dn_num=10, hidden_dim=8
    )
    outputs, dn_outputs, _ = _decoder_outputs(3, 20, meta.pad_size, two_stage=False)
    losses = criterion(outputs, targets, dn_meta=meta, dn_outputs=dn_outputs)
    assert set(losses) == _expected_keys(3, range(1, 3), interm=False)


def test_batch_without_objects_is_finite() -> None:
    criterion = build_criterion(_config())
    outputs, _, _ = _decoder_outputs(3, 20, pad=0)
    empty = [
        {
            "labels": torch.zeros(0, dtype=torch.int64),
            "boxes": torch.zeros(0, 4),
            "masks": torch.zeros(0, 64, 64),
        }
    ]
    losses = criterion(outputs, empty * 2)
    assert all(torch.isfinite(v) for v in losses.values())
    assert losses["loss_ce"] > 0 and losses["loss_bbox"] == 0 and losses["loss_mask"] == 0


def test_official_weight_dict() -> None:
    weights = official_weight_dict(ModelConfig())
    # 5 base -> +_interm 10 -> +_dn 20 -> 20 * (1 + 9 layers)
    assert len(weights) == 200
    assert (
        weights["loss_ce_dn_8"] == 4.0
        and weights["loss_mask_interm"] == 5.0
        and weights["loss_giou_3"] == 2.0
    )
    assert "loss_mask_interm_dn_3" in weights  # the official builder copies every key at each step

    cfg = ModelConfig()
    cfg.decoder.dn = "standard"
    weights = official_weight_dict(cfg)
    assert len(weights) == 180 and "loss_mask_dn" not in weights and "loss_mask_interm_dn" in weights

    cfg = ModelConfig()
    cfg.decoder.two_stage, cfg.decoder.dn, cfg.loss.deep_supervision = False, "no", False
    assert official_weight_dict(cfg) == {
        "loss_ce": 4.0,
        "loss_mask": 5.0,
        "loss_dice": 5.0,
        "loss_bbox": 5.0,
        "loss_giou": 2.0,
    }


def test_build_criterion_options() -> None:
    cfg = ModelConfig(num_classes=150)
    cfg.decoder.semantic_ce_loss = True
    cfg.loss.box_loss = False
    criterion = build_criterion(cfg)
    assert criterion.semantic_ce_loss and criterion.thing_classes is None
    assert criterion.losses == ("labels", "masks") and criterion.dn_losses == ("labels", "masks", "boxes")
    assert math.isclose(
        criterion.class_weight[-1].item(), 0.1, rel_tol=1e-6
    ) and criterion.class_weight.shape == (151,)
    assert criterion.num_points == 12544 and criterion.matcher.num_points == 12544
