"""The set criterion: match, then classification, box and point-sampled mask losses on every output.

Losses are returned unweighted under the official names (`loss_ce`, `loss_bbox`, `loss_giou`,
`loss_mask`, `loss_dice`) with suffixes `_interm` (encoder proposals), `_dn` (denoising queries) and
`_{i}` (the i-th earlier prediction), and for DI-MaskDINO's token-interaction layers the official
`oldm_loss_ce_{i}`, `oldm_loss_bbox_{i}`, `oldm_loss_giou_{i}`; `weight_dict` holds the official weights and
the model drops every loss that has no weight.
"""

from __future__ import annotations

import torch
import torch.distributed as dist
import torch.nn.functional as F
from torch import nn

from maskdino.config import ModelConfig
from maskdino.decoder.denoising_queries import DenoisingMeta
from maskdino.layers.box_ops import box_cxcywh_to_xyxy, generalized_box_iou
from maskdino.losses.functional import (
    dice_loss,
    point_sample,
    sample_masks_at_points,
    sigmoid_ce_loss,
    sigmoid_focal_loss,
    uncertain_point_coords_with_randomness,
)
from maskdino.losses.matcher import HungarianMatcher, is_thing

Indices = list[tuple[torch.Tensor, torch.Tensor]]

# loss group -> the keys it produces
LOSS_KEYS = {"labels": ("loss_ce",), "masks": ("loss_mask", "loss_dice"), "boxes": ("loss_bbox", "loss_giou")}
DN_LOSSES = {"no": (), "standard": ("labels", "boxes"), "seg": ("labels", "masks", "boxes")}


class SetCriterion(nn.Module):
    """Hungarian-matched losses for the final output, every `aux_outputs` entry and `interm_outputs`,
    plus the denoising losses on the DN part of each decoder output.

    DI-MaskDINO's `oldm_outputs` (class and box predictions of each token-interaction layer, no masks)
    get the class and box losses after matching on class and box costs only (`oldm_loss_*_{i}`).

    Classification is a sigmoid focal loss scaled by the number of queries / num_masks (official), or,
    with `semantic_ce_loss`, a softmax cross-entropy over C + 1 logits with the no-object class weighted by
    `no_object_weight`. With `thing_classes` given (`loss.pano_box_loss`), stuff targets get no box loss. Targets whose
    `has_mask` is False (box-only annotations) get no mask loss.
    """

    def __init__(
        self,
        *,
        num_classes: int,
        matcher: HungarianMatcher,
        weight_dict: dict[str, float],
        num_points: int = 12544,
        oversample_ratio: float = 3.0,
        importance_sample_ratio: float = 0.75,
        no_object_weight: float = 0.1,
        focal_alpha: float = 0.25,
        focal_gamma: float = 2.0,
        box_loss: bool = True,
        dn: str = "seg",
        thing_classes: tuple[int, ...] | None = None,
        semantic_ce_loss: bool = False,
    ) -> None:
        super().__init__()
        if dn not in DN_LOSSES:
            raise ValueError(f"dn must be one of {tuple(DN_LOSSES)}, got {dn!r}")
        self.num_classes = num_classes
        self.matcher = matcher
        self.weight_dict = weight_dict
        self.num_points = num_points
        self.oversample_ratio = oversample_ratio
        self.importance_sample_ratio = importance_sample_ratio
        self.focal_alpha = focal_alpha
        self.focal_gamma = focal_gamma
        self.losses = ("labels", "masks", "boxes") if box_loss else ("labels", "masks")
        self.dn = dn
        self.dn_losses = DN_LOSSES[dn]
        self.thing_classes = thing_classes
        self.semantic_ce_loss = semantic_ce_loss
        class_weight = torch.ones(num_classes + 1)
        class_weight[-1] = no_object_weight
        self.register_buffer("class_weight", class_weight, persistent=False)

    def forward(
        self,
        outputs: dict,
        targets: list[dict],
        dn_meta: DenoisingMeta | None = None,
        dn_outputs: dict | None = None,
    ) -> dict[str, torch.Tensor]:
        """All unweighted losses. `dn_meta`/`dn_outputs` come from the denoising queries of this batch."""
        device = outputs["pred_logits"].device
        num_masks = self._average_num_masks(targets, device)
        use_dn = self.dn != "no" and dn_meta is not None and dn_outputs is not None
        dn_indices = dn_meta.loss_indices() if use_dn else None
        dn_num_masks = num_masks * dn_meta.num_groups if use_dn else 0.0

        indices = self.matcher(outputs, targets)
        losses = self._losses(self.losses, outputs, targets, indices, num_masks, "")
        if use_dn:
            losses.update(self._losses(self.dn_losses, dn_outputs, targets, dn_indices, dn_num_masks, "_dn"))
        else:
            losses.update(self._zero_losses(self.dn_losses, "_dn", device))

        # the official code supervises the DN part of the initial prediction only in two-stage mode
        first_dn_layer = 0 if "interm_outputs" in outputs else 1
        for i, aux in enumerate(outputs.get("aux_outputs", [])):
            aux_indices = self.matcher(aux, targets)
            losses.update(self._losses(self.losses, aux, targets, aux_indices, num_masks, f"_{i}"))
            if i < first_dn_layer:
                continue
            if use_dn:
                dn_aux = dn_outputs["aux_outputs"][i]
                losses.update(
                    self._losses(self.dn_losses, dn_aux, targets, dn_indices, dn_num_masks, f"_dn_{i}")
                )
            else:
                losses.update(self._zero_losses(self.dn_losses, f"_dn_{i}", device))

        if "interm_outputs" in outputs:
            interm = outputs["interm_outputs"]
            interm_indices = self.matcher(interm, targets)
            losses.update(self._losses(self.losses, interm, targets, interm_indices, num_masks, "_interm"))

        # DI-MaskDINO token interaction: class and box terms, named with a prefix as in the official code
        for i, oldm in enumerate(outputs.get("oldm_outputs", [])):
            oldm_indices = self.matcher(oldm, targets, costs=("cls", "box"))
            oldm_losses = self._losses(("labels", "boxes"), oldm, targets, oldm_indices, num_masks, f"_{i}")
            losses.update({f"oldm_{k}": v for k, v in oldm_losses.items()})
        return losses

    def loss_labels(self, outputs: dict, targets: list[dict], indices: Indices, num_masks: float) -> dict:
        """`loss_ce`: focal loss over all queries and classes (unmatched queries are all-negative)."""
        logits = outputs["pred_logits"].float()  # [B, Q, C] (C + 1 with semantic CE)
        target_classes = self._target_classes(logits, targets, indices)
        if self.semantic_ce_loss:
            loss = F.cross_entropy(logits.transpose(1, 2), target_classes, self.class_weight)
            return {"loss_ce": loss}
        # the extra column takes the no-object class and is dropped: unmatched rows stay all-zero
        onehot = torch.zeros(*logits.shape[:2], logits.shape[2] + 1, dtype=logits.dtype, device=logits.device)
        onehot.scatter_(2, target_classes.unsqueeze(-1), 1)
        onehot = onehot[:, :, :-1]
        loss = sigmoid_focal_loss(logits, onehot, num_masks, self.focal_alpha, self.focal_gamma)
        return {"loss_ce": loss * logits.shape[1]}

    def loss_boxes(self, outputs: dict, targets: list[dict], indices: Indices, num_masks: float) -> dict:
        """`loss_bbox` (L1 on cx, cy, w, h) and `loss_giou` of matched pairs, summed and / num_masks."""
        src_boxes = outputs["pred_boxes"][_batch_and_pred_idx(indices)].float()
        tgt_boxes = torch.cat([t["boxes"][j] for t, (_, j) in zip(targets, indices)]).to(src_boxes)
        if self.thing_classes is not None:
            labels = torch.cat([t["labels"][j] for t, (_, j) in zip(targets, indices)])
            thing = is_thing(labels, self.thing_classes).to(src_boxes.device)
            src_boxes, tgt_boxes = src_boxes[thing], tgt_boxes[thing]
        loss_bbox = F.l1_loss(src_boxes, tgt_boxes, reduction="none").sum() / num_masks
        giou = torch.diag(generalized_box_iou(box_cxcywh_to_xyxy(src_boxes), box_cxcywh_to_xyxy(tgt_boxes)))
        return {"loss_bbox": loss_bbox, "loss_giou": (1 - giou).sum() / num_masks}

    def loss_masks(self, outputs: dict, targets: list[dict], indices: Indices, num_masks: float) -> dict:
        """`loss_mask` (BCE) and `loss_dice` of matched pairs on importance-sampled points."""
        src_masks = outputs["pred_masks"][_batch_and_pred_idx(indices)][:, None]  # [M, 1, Hm, Wm]
        tgt_masks = torch.cat([t["masks"] for t in targets])  # [N_total, H, W], all images at one size
        offsets = torch.tensor([0] + [len(t["labels"]) for t in targets[:-1]]).cumsum(0)
        tgt_index = torch.cat([j + offsets[b] for b, (_, j) in enumerate(indices)]).to(tgt_masks.device)
        with_mask = _matched_has_mask(targets, indices)
        if with_mask is not None:  # box-only targets (no mask annotated) get no mask loss
            if not with_mask.any():
                zero = outputs["pred_masks"].sum() * 0.0  # keeps the mask head in the graph
                return {"loss_mask": zero, "loss_dice": zero}
            src_masks, tgt_index = src_masks[with_mask.to(src_masks.device)], tgt_index[with_mask]
        with torch.no_grad():
            coords = uncertain_point_coords_with_randomness(
                src_masks, self.num_points, self.oversample_ratio, self.importance_sample_ratio
            )  # [M, P, 2]
            point_labels = sample_masks_at_points(tgt_masks, tgt_index, coords.to(tgt_masks.device))
        point_logits = point_sample(src_masks, coords.to(src_masks.dtype))[:, 0].float()  # [M, P]
        point_labels = point_labels.to(point_logits.device)
        return {
            "loss_mask": sigmoid_ce_loss(point_logits, point_labels, num_masks),
            "loss_dice": dice_loss(point_logits, point_labels, num_masks),
        }

    def _losses(
        self,
        groups: tuple[str, ...],
        outputs: dict,
        targets: list[dict],
        indices: Indices,
        num_masks: float,
        suffix: str,
    ) -> dict[str, torch.Tensor]:
        loss_fns = {"labels": self.loss_labels, "masks": self.loss_masks, "boxes": self.loss_boxes}
        losses = {}
        for group in groups:
            losses.update(loss_fns[group](outputs, targets, indices, num_masks))
        return {k + suffix: v for k, v in losses.items()}

    @staticmethod
    def _zero_losses(groups: tuple[str, ...], suffix: str, device: torch.device) -> dict[str, torch.Tensor]:
        """Zeros for the DN keys of a batch without DN queries, so every step logs the same keys."""
        return {key + suffix: torch.zeros((), device=device) for group in groups for key in LOSS_KEYS[group]}

    def _target_classes(self, logits: torch.Tensor, targets: list[dict], indices: Indices) -> torch.Tensor:
        """`[B, Q]` class of each query's matched target; `num_classes` (no object) where unmatched."""
        target_classes = torch.full(
            logits.shape[:2], self.num_classes, dtype=torch.int64, device=logits.device
        )
        matched = torch.cat([t["labels"][j] for t, (_, j) in zip(targets, indices)]).to(logits.device)
        target_classes[_batch_and_pred_idx(indices)] = matched
        return target_classes

    @staticmethod
    def _average_num_masks(targets: list[dict], device: torch.device) -> float:
        """Objects per process averaged over all processes, at least 1: the loss normaliser."""
        num_masks = torch.tensor([float(sum(len(t["labels"]) for t in targets))], device=device)
        world_size = 1
        if dist.is_available() and dist.is_initialized():
            dist.all_reduce(num_masks)
            world_size = dist.get_world_size()
        return torch.clamp(num_masks / world_size, min=1).item()


def _matched_has_mask(targets: list[dict], indices: Indices) -> torch.Tensor | None:
    """`[M]` whether each matched target has a mask (None when every target of the batch has one)."""
    if all("has_mask" not in t or bool(t["has_mask"].all()) for t in targets):
        return None
    flags = [
        t["has_mask"][j.to(t["has_mask"].device)] if "has_mask" in t else torch.ones(len(j), dtype=torch.bool)
        for t, (_, j) in zip(targets, indices)
    ]
    return torch.cat([f.cpu() for f in flags])


def _batch_and_pred_idx(indices: Indices) -> tuple[torch.Tensor, torch.Tensor]:
    """Advanced index (image, query) of every matched prediction."""
    batch_idx = torch.cat([torch.full_like(pred, b) for b, (pred, _) in enumerate(indices)])
    pred_idx = torch.cat([pred for pred, _ in indices])
    return batch_idx, pred_idx


def official_weight_dict(cfg: ModelConfig) -> dict[str, float]:
    """The official loss weights: base terms, `_interm` (two-stage), `_dn`, then `_{i}` for every layer;
    for DI-MaskDINO also `oldm_loss_{ce,bbox,giou}_{i}` for every token-interaction layer (the official
    dict also holds `oldm_` copies of every other key, which no loss carries).

    Each step copies all keys made so far, so names such as `loss_ce_interm_dn_3` exist although no loss
    carries them (harmless: they are only looked up).
    """
    loss = cfg.loss
    weights = {
        "loss_ce": loss.class_weight,
        "loss_mask": loss.mask_weight,
        "loss_dice": loss.dice_weight,
        "loss_bbox": loss.box_weight,
        "loss_giou": loss.giou_weight,
    }
    if cfg.decoder.two_stage:
        weights.update({k + "_interm": v for k, v in weights.items()})
    if cfg.decoder.dn == "standard":
        weights.update({k + "_dn": v for k, v in weights.items() if k not in ("loss_mask", "loss_dice")})
    elif cfg.decoder.dn == "seg":
        weights.update({k + "_dn": v for k, v in weights.items()})
    if loss.deep_supervision:
        weights.update(
            {f"{k}_{i}": v for i in range(cfg.decoder.num_layers) for k, v in list(weights.items())}
        )
    if cfg.decoder.variant == "dimaskdino":
        base = {"loss_ce": loss.class_weight, "loss_bbox": loss.box_weight, "loss_giou": loss.giou_weight}
        weights.update({f"oldm_{k}_{i}": v for i in range(cfg.decoder.ti_layers) for k, v in base.items()})
    return weights


def build_criterion(cfg: ModelConfig) -> SetCriterion:
    """The criterion of an official config (matcher costs, weights, DN mode, panoptic/semantic options)."""
    loss = cfg.loss
    things = cfg.thing_classes or tuple(range(cfg.num_classes))  # empty: every class is a thing
    matcher = HungarianMatcher(
        cost_class=loss.cost_class_weight,
        cost_box=loss.cost_box_weight,
        cost_giou=loss.cost_giou_weight,
        cost_mask=loss.cost_mask_weight,
        cost_dice=loss.cost_dice_weight,
        num_points=loss.num_points,
        alpha=loss.focal_alpha,
        gamma=loss.focal_gamma,
        thing_classes=things if loss.pano_box_loss else None,
    )
    return SetCriterion(
        num_classes=cfg.num_classes,
        matcher=matcher,
        weight_dict=official_weight_dict(cfg),
        num_points=loss.num_points,
        oversample_ratio=loss.oversample_ratio,
        importance_sample_ratio=loss.importance_sample_ratio,
        no_object_weight=loss.no_object_weight,
        focal_alpha=loss.focal_alpha,
        focal_gamma=loss.focal_gamma,
        box_loss=loss.box_loss,
        dn=cfg.decoder.dn,
        thing_classes=things if loss.pano_box_loss else None,
        semantic_ce_loss=cfg.decoder.semantic_ce_loss,
    )
