"""Typed raw outputs of the network, before post-processing."""

from __future__ import annotations

from dataclasses import dataclass, field

import torch


@dataclass
class Prediction:
    """One set of per-query predictions.

    logits: `[B, Q, C]` class logits (`C + 1` with a no-object class for semantic-CE presets).
    boxes: `[B, Q, 4]` (cx, cy, w, h) in [0, 1] of the padded input.
    masks: `[B, Q, H/4, W/4]` mask logits at 1/4 of the padded input, or None where the eval path skips them.
    """

    logits: torch.Tensor
    boxes: torch.Tensor
    masks: torch.Tensor | None

    def as_dict(self) -> dict[str, torch.Tensor | None]:
        return {"pred_logits": self.logits, "pred_boxes": self.boxes, "pred_masks": self.masks}


@dataclass
class MaskDINOOutput:
    """Official network outputs: the final prediction, every earlier one and the encoder proposals.

    aux: predictions before the final one (with `initial_pred`, the first is from the selected queries
    before any decoder layer). interm: the two-stage encoder proposals (None without two-stage).
    extra: additional named prediction lists (DI-MaskDINO's token-interaction outputs).
    """

    final: Prediction
    aux: list[Prediction]
    interm: Prediction | None = None
    extra: dict[str, list[Prediction]] = field(default_factory=dict)

    @property
    def pred_logits(self) -> torch.Tensor:
        return self.final.logits

    @property
    def pred_boxes(self) -> torch.Tensor:
        return self.final.boxes

    @property
    def pred_masks(self) -> torch.Tensor | None:
        return self.final.masks

    def as_dict(self) -> dict:
        """The dict layout the official criterion consumes (`pred_*`, `aux_outputs`, `interm_outputs`)."""
        out: dict = self.final.as_dict()
        out["aux_outputs"] = [p.as_dict() for p in self.aux]
        if self.interm is not None:
            out["interm_outputs"] = self.interm.as_dict()
        for name, preds in self.extra.items():
            out[name] = [p.as_dict() for p in preds]
        return out
