"""A model built from scratch draws every non-backbone parameter as the official model does.

`init_<name>.json.gz` holds per-parameter statistics of the official model built from scratch (seed 0).
For the two presets it describes, every non-backbone parameter of ours (matched to its official name
through the checkpoint conversion) must be the same constant where the official one is constant, and
otherwise have the official mean and std within sampling noise and the same spread (range / std tells a
uniform draw from a normal one). Presets without such a file (panoptic, ADE20K, Swin-L) are held to the
same rules: each parameter takes the statistics of the parameter of that official name in `r50_ins_4s`,
its std rescaled by the fans of its own shape when the shapes differ.

The official stacks are copies of one layer whose biases the xavier pass does not redraw, so at
initialisation several parameters are equal: ours must be equal exactly where the official ones are.
"""

from __future__ import annotations

import gzip
import json
import math
import re
from functools import cache

import pytest
import torch

from maskdino import build_model, get_config
from tests.reference import REFERENCE, official_names

# preset -> (its reference inventory, the init statistics it is compared with)
CASES = {
    "r50_ins_4s": ("r50_ins_4s", "r50_ins_4s"),
    "dimaskdino_r50_4s_12ep": ("di_r50_12ep", "di_r50_12ep"),
    "r50_pan": ("r50_pan", "r50_ins_4s"),
    "r50_ade_sem": ("r50_ade_sem", "r50_ins_4s"),
    "swinl_ins_5s": ("swinl_ins_5s", "r50_ins_4s"),
}
SIGMAS = 5.0  # tolerance on the mean and std, in standard errors of the statistic


@cache
def init_statistics(name: str) -> dict[str, dict]:
    with gzip.open(REFERENCE / f"init_{name}.json.gz", "rt") as f:
        return json.load(f)["params"]


def fans(shape) -> tuple[int, int]:
    """(fan_in, fan_out) of a weight of at least two dimensions, as torch.nn.init computes them."""
    receptive = math.prod(shape[2:])
    return shape[1] * receptive, shape[0] * receptive


# std of the official draws as a function of the shape (a bias takes the fans of its layer's weight)
STD_RULES = {
    "xavier_uniform": lambda fan_in, fan_out: math.sqrt(2.0 / (fan_in + fan_out)),
    "default_linear": lambda fan_in, fan_out: 1.0 / math.sqrt(3.0 * fan_in),
    "c2_xavier_fill": lambda fan_in, fan_out: 1.0 / math.sqrt(fan_in),
}


def shape_scales(stats: dict, official_shape, shape, official_weight_shape, weight_shape) -> list[float]:
    """Factors that carry the official mean and std over to our shape: 1 if the fans agree, else the
    ratio of every rule that explains the official std (within 10 %; a square matrix fits both xavier
    and c2_xavier_fill), else 1 (embeddings, level embeddings and the deformable-attention offsets do
    not depend on the shape)."""
    fan_shapes = (official_weight_shape, weight_shape) if len(shape) == 1 else (official_shape, shape)
    if fan_shapes[0] is None or list(fan_shapes[0]) == list(fan_shapes[1]):
        return [1.0]
    scales = []
    for rule in STD_RULES.values():
        official = rule(*fans(fan_shapes[0]))
        if abs(stats["std"] / official - 1) < 0.1:
            scales.append(rule(*fans(fan_shapes[1])) / official)
    return scales or [1.0]


@cache
def reference_parameters(preset: str) -> list[tuple[str, torch.Tensor, dict, list[float]]]:
    """(our name, our initial tensor, official statistics, `shape_scales`) of every non-backbone parameter."""
    keys_name, stats_name = CASES[preset]
    torch.manual_seed(0)
    model = build_model(get_config(preset))
    stats = init_statistics(stats_name)
    ours_to_official = official_names(keys_name)
    params = {n: p for n, p in model.named_parameters() if not n.startswith("backbone.")}
    rows = []
    for name, param in params.items():
        known = [n for n in ours_to_official[name] if n in stats]
        if not known and name.startswith("pixel_decoder.input_proj."):
            # a level r50 does not have (Swin-L's fifth): every input projection follows one rule
            known = [re.sub(r"input_proj\.\d+\.", "input_proj.0.", n) for n in ours_to_official[name]]
        if not known:
            assert name in ("predictor.query_feat.weight", "predictor.query_embed.weight"), name
            # learned queries of the presets without query selection: nn.Embedding's N(0, 1)
            rows.append((name, param.detach(), {"constant": False, "mean": 0.0, "std": 1.0}, [1.0]))
            continue
        official = stats[known[0]]
        weight, official_weight = (n.removesuffix("bias") + "weight" for n in (name, known[0]))
        scales = shape_scales(
            official,
            official["shape"],
            list(param.shape),
            stats[official_weight]["shape"] if official_weight in stats else None,
            list(params[weight].shape) if weight in params else None,
        )
        rows.append((name, param.detach(), official, scales))
    if keys_name == stats_name:  # the statistics describe this very model: all of them are used
        assert len(rows) == len(stats)
    return rows


def discrepancy(value: torch.Tensor, stats: dict, scale: float = 1.0) -> str | None:
    """Why `value` cannot be a draw of the official distribution, its mean and std multiplied by `scale`
    (None if it can). The official statistics are one draw too: the tolerances add the sampling noise of
    both."""
    x = value.double().flatten()
    if stats["constant"]:
        return None if torch.all(x == stats["mean"]) else f"official constant {stats['mean']}, ours {x[:3]}"
    n, n_official = x.numel(), stats.get("numel", math.inf)
    mean, std = x.mean().item(), x.std().item()
    official_mean, official_std = stats["mean"] * scale, stats["std"] * scale
    if abs(mean - official_mean) > SIGMAS * official_std * math.sqrt(1 / n + 1 / n_official) + 1e-7:
        return f"mean {mean:.4g}, official {official_mean:.4g} (std {official_std:.4g}, n {n})"
    if abs(std / official_std - 1) > SIGMAS * math.sqrt(1 / (2 * n - 2) + 1 / (2 * n_official - 2)):
        return f"std {std:.4g}, official {official_std:.4g} (n {n})"
    if n >= 1000 and "min" in stats:  # range / std: ~3.5 for a uniform draw, 8-10 for a normal one
        spread = (x.max() - x.min()).item() / std
        official_spread = (stats["max"] - stats["min"]) / stats["std"]
        if abs(spread / official_spread - 1) > 0.2:
            return f"range {spread:.3g} std, official {official_spread:.3g} std"
    return None


@pytest.mark.parametrize("preset", list(CASES))
def test_every_parameter_has_the_official_distribution(preset):
    rows = reference_parameters(preset)
    assert len(rows) > 300
    wrong = []
    for name, value, stats, scales in rows:
        reasons = [discrepancy(value, stats, scale) for scale in scales]
        if None not in reasons:
            wrong.append(f"{name}: {reasons[0]}")
    assert not wrong, f"{len(wrong)} of {len(rows)} parameters differ:\n" + "\n".join(wrong)


def test_a_wrong_init_is_caught():
    """The check tells the distributions the issue found mixed up apart (same parameter, same shape)."""
    stats = init_statistics("r50_ins_4s")
    official = stats["sem_seg_head.predictor.decoder.layers.0.linear1.weight"]
    torch.manual_seed(0)
    default_init = torch.nn.Linear(256, 2048).weight.detach()  # what it was before the xavier pass
    assert "std" in discrepancy(default_init, official)
    xavier_normal = torch.nn.init.xavier_normal_(torch.empty(2048, 256))  # right std, wrong shape
    assert "range" in discrepancy(xavier_normal, official)
    xavier_uniform = torch.nn.init.xavier_uniform_(torch.empty(2048, 256))
    assert discrepancy(xavier_uniform, official) is None


@pytest.mark.parametrize("preset", ["r50_ins_4s", "dimaskdino_r50_4s_12ep", "r50_ade_sem"])
def test_parameters_start_equal_where_the_official_ones_do(preset):
    """Group the random parameters by their official statistics (equal statistics = equal tensors in
    the official model) and by their values in ours: the groupings must be the same."""
    official_groups, our_groups = {}, {}
    for name, value, stats, _ in reference_parameters(preset):
        if stats["constant"] or "min" not in stats:
            continue
        signature = (tuple(value.shape), stats["mean"], stats["std"], stats["min"], stats["max"])
        official_groups.setdefault(signature, set()).add(name)
        our_groups.setdefault((tuple(value.shape), value.numpy().tobytes()), set()).add(name)
    shared = {frozenset(g) for g in official_groups.values() if len(g) > 1}
    assert shared, "the official stacks share their biases at initialisation"
    assert shared == {frozenset(g) for g in our_groups.values() if len(g) > 1}
