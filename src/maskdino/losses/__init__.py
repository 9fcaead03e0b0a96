"""Matching and training losses of Mask DINO."""

from maskdino.losses.criterion import SetCriterion, build_criterion, official_weight_dict
from maskdino.losses.matcher import HungarianMatcher

__all__ = ["HungarianMatcher", "SetCriterion", "build_criterion", "official_weight_dict"]
