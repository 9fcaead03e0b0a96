"""Activation checkpointing of the encoder and decoder layers trades memory for compute only: the same
losses and gradients as without it."""

from __future__ import annotations

import torch

from maskdino import build_model, get_config


def _losses_and_grads(checkpointing: bool):
    overrides = [
        f"model.pixel_decoder.use_checkpoint={checkpointing}",
        f"model.decoder.use_checkpoint={checkpointing}",
        "model.decoder.dn=no",  # denoising draws random noise: keep the two runs' inputs identical
        "model.loss.num_points=256",
    ]
    torch.manual_seed(0)
    model = build_model(get_config("demo", overrides)).train()
    images = [torch.rand(3, 96, 128)]
    masks = torch.zeros(1, 96, 128, dtype=torch.bool)
    masks[0, 20:70, 30:100] = True
    targets = [
        {"labels": torch.tensor([3]), "boxes": torch.tensor([[30.0, 20.0, 100.0, 70.0]]), "masks": masks}
    ]
    torch.manual_seed(1)  # the same point sampling in the losses
    total = sum(model(images, targets).values())
    total.backward()
    grads = {n: p.grad.clone() for n, p in model.named_parameters() if p.grad is not None}
    return float(total), grads


def test_checkpointing_gives_the_same_losses_and_gradients():
    loss, grads = _losses_and_grads(False)
    loss_ckpt, grads_ckpt = _losses_and_grads(True)
    assert abs(loss - loss_ckpt) <= 1e-5 * abs(loss)
    assert grads.keys() == grads_ckpt.keys()
    for name, grad in grads.items():
        torch.testing.assert_close(grads_ckpt[name], grad, rtol=1e-4, atol=1e-6, msg=name)
