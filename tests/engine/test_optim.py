"""The official optimiser recipe: parameter groups, lr schedule, batch layout, AMP and clipping."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from maskdino.build import build_model
from maskdino.config import SolverConfig
from maskdino.engine.distributed import batch_layout
from maskdino.engine.optim import (
    amp_settings,
    build_grad_scaler,
    build_optimizer,
    build_scheduler,
    clip_and_step,
    lr_factor,
    param_groups,
)
from maskdino.presets import get_config


def _groups_by_parameter(model: nn.Module) -> tuple[dict[str, dict], dict[str, dict]]:
    """The optimizer groups (lr 1e-4, decay 0.05, backbone x 0.1) by group name and by parameter name."""
    solver = SolverConfig(base_lr=1e-4, weight_decay=0.05, backbone_multiplier=0.1)
    groups = {g["name"]: g for g in param_groups(model, solver)}
    names = {id(p): n for n, p in model.named_parameters()}
    return groups, {names[id(p)]: g for g in groups.values() for p in g["params"]}


def _meta_model(overrides: list[str]) -> nn.Module:
    with torch.device("meta"):
        return build_model(get_config("demo", overrides))


def test_param_groups_follow_the_official_rules() -> None:
    model = _meta_model(["model.backbone.resnet.norm=FrozenBN"])
    groups, grouped = _groups_by_parameter(model)
    assert len(grouped) == sum(1 for p in model.parameters() if p.requires_grad)  # each exactly once
    # backbone: lr x 0.1 (FrozenBN has no parameters, so every backbone tensor decays)
    assert grouped["backbone.stem.conv1.weight"]["lr"] == pytest.approx(1e-5)
    assert grouped["backbone.stem.conv1.weight"]["weight_decay"] == 0.05
    # norms (LayerNorm, GroupNorm) and embeddings: no weight decay, full lr
    for name in (
        "predictor.norm.weight",
        "predictor.decoder.layers.0.norm1.bias",
        "predictor.label_enc.weight",
    ):
        assert grouped[name]["weight_decay"] == 0.0 and grouped[name]["lr"] == 1e-4, name
    gn = next(n for n, m in model.named_modules() if isinstance(m, nn.GroupNorm))
    assert grouped[f"{gn}.weight"]["weight_decay"] == 0.0
    # the pixel decoder's level embedding is a plain Parameter: it decays, as in the official code
    assert grouped["pixel_decoder.level_embed"]["weight_decay"] == 0.05
    assert grouped["predictor.class_embed.weight"]["weight_decay"] == 0.05
    assert set(groups) == {"backbone/decay", "head/decay", "head/no_decay"}


def test_trainable_backbone_batchnorm_gets_the_backbone_lr_and_no_decay() -> None:
    assert get_config("demo").model.backbone.resnet.norm == "BN"  # trained from scratch: trainable BN
    _, grouped = _groups_by_parameter(_meta_model([]))
    norm = grouped["backbone.res2.0.conv1.norm.weight"]
    assert norm["lr"] == pytest.approx(1e-5) and norm["weight_decay"] == 0.0
    assert grouped["backbone.res2.0.conv1.weight"]["weight_decay"] == 0.05


def test_optimizer_is_adamw_with_group_lrs() -> None:
    model = nn.Sequential(nn.Linear(2, 2), nn.LayerNorm(2))
    optimizer = build_optimizer(model, SolverConfig(base_lr=1e-3))
    assert isinstance(optimizer, torch.optim.AdamW)
    assert {g["name"]: g["weight_decay"] for g in optimizer.param_groups} == {
        "head/decay": 0.05,
        "head/no_decay": 0.0,
    }
    with pytest.raises(ValueError, match="adamw"):
        build_optimizer(model, SolverConfig(optimizer="sgd"))


def test_multistep_schedule_with_linear_warmup() -> None:
    solver = SolverConfig(max_iter=100, steps=(50, 80, 200), gamma=0.1, warmup_iters=10, warmup_factor=0.1)
    assert lr_factor(solver, 0) == pytest.approx(0.1)
    assert lr_factor(solver, 5) == pytest.approx(0.55)
    assert lr_factor(solver, 10) == pytest.approx(1.0)
    assert lr_factor(solver, 49) == pytest.approx(1.0)
    assert lr_factor(solver, 50) == pytest.approx(0.1)
    assert lr_factor(solver, 80) == pytest.approx(0.01)
    assert lr_factor(solver, 99) == pytest.approx(0.01)  # the step at 200 > max_iter is ignored
    # the official COCO recipe: warm-up factor 1.0 over 10 iterations is a constant lr
    official = SolverConfig()
    assert [lr_factor(official, i) for i in (0, 5, 327777, 327778, 355092)] == pytest.approx(
        [1, 1, 1, 0.1, 0.01]
    )


def test_poly_schedule_and_scheduler_steps_per_iteration() -> None:
    solver = SolverConfig(lr_scheduler="poly", max_iter=10, warmup_iters=0, poly_power=0.9, base_lr=1.0)
    assert lr_factor(solver, 5) == pytest.approx(0.5**0.9)
    param = nn.Parameter(torch.zeros(1))
    optimizer = torch.optim.AdamW([param], lr=1.0)
    scheduler = build_scheduler(optimizer, solver)
    lrs = []
    for _ in range(3):
        lrs.append(optimizer.param_groups[0]["lr"])
        optimizer.step()
        scheduler.step()
    assert lrs == pytest.approx([lr_factor(solver, i) for i in range(3)])


@pytest.mark.parametrize(
    ("world", "per_device", "accum", "expected"),
    [(1, 0, 0, (16, 1)), (2, 4, 0, (4, 2)), (2, 0, 2, (4, 2)), (8, 2, 1, (2, 1)), (4, 0, 0, (4, 1))],
)
def test_batch_layout_reaches_the_global_batch(world, per_device, accum, expected) -> None:
    layout = batch_layout(16, world, per_device, accum)
    assert (layout.per_device, layout.accum_steps) == expected
    assert layout.world_size * layout.per_device * layout.accum_steps == 16


def test_batch_layout_describes_itself_and_rejects_impossible_splits() -> None:
    assert "x 4 images x 2 accumulation steps" in batch_layout(16, 2, 4, 0).describe()
    assert batch_layout(16, 2, 4, 0).describe().startswith("global batch 16 = 2 ")
    with pytest.raises(ValueError, match="ims_per_batch=16"):
        batch_layout(16, 3, 0, 0)
    with pytest.raises(ValueError, match="per_device_batch=3"):
        batch_layout(16, 2, 3, 0)
    with pytest.raises(ValueError, match="= 12 images per step"):
        batch_layout(16, 2, 3, 2)


def test_amp_on_cpu() -> None:
    cpu = torch.device("cpu")
    fp16 = amp_settings(SolverConfig(amp=True, amp_dtype="float16"), cpu)
    assert not fp16.enabled and not fp16.needs_scaler  # fp16 autocast is for GPUs: off on CPU
    bf16 = amp_settings(SolverConfig(amp=True, amp_dtype="bfloat16"), cpu)
    assert bf16.enabled and bf16.dtype == torch.bfloat16 and not bf16.needs_scaler
    with bf16.autocast():
        assert (torch.ones(2, 2) @ torch.ones(2, 2)).dtype == torch.bfloat16
    with pytest.raises(ValueError, match="amp_dtype"):
        amp_settings(SolverConfig(amp_dtype="int8"), cpu)


def test_clipping_sees_unscaled_gradients() -> None:
    param = nn.Parameter(torch.tensor([3.0, 4.0]))
    optimizer = torch.optim.SGD([param], lr=1.0)
    scaler = torch.amp.GradScaler("cpu", init_scale=1024.0)
    scaler.scale((param * torch.tensor([3.0, 4.0])).sum()).backward()  # gradient (3, 4), norm 5, scaled x1024
    norm = clip_and_step(optimizer, scaler, SolverConfig(clip_value=1.0))
    assert norm.item() == pytest.approx(5.0)
    assert param.detach().tolist() == pytest.approx([3.0 - 0.6, 4.0 - 0.8])  # clipped to norm 1
    disabled = build_grad_scaler(amp_settings(SolverConfig(amp=False), torch.device("cpu")))
    assert not disabled.is_enabled()


def test_cosine_schedule_after_warmup():
    solver = SolverConfig(lr_scheduler="cosine", max_iter=100, warmup_iters=0)
    assert lr_factor(solver, 0) == 1.0
    assert abs(lr_factor(solver, 50) - 0.5) < 1e-12
    assert abs(lr_factor(solver, 100)) < 1e-12
