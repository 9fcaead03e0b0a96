"""DI-MaskDINO's De-Imbalance module, BATO and decoder head on tiny random inputs (the official numbers are
checked in tests/test_parity_di.py), and one training step of a tiny DI model."""

from __future__ import annotations

import pytest
import torch

from maskdino import build_model, get_config
from maskdino.config import DecoderConfig
from maskdino.decoder.balance_aware import BalanceAwareTokens
from maskdino.decoder.di_module import ObjectLevelDetection
from maskdino.decoder.dimaskdino_decoder import DIMaskDINODecoder
from maskdino.layers.box_ops import inverse_sigmoid
from maskdino.pixel_decoder import MultiScaleFeatures

DIM = 32
SHAPES = [(4, 4), (8, 8)]


def tiny_decoder_config(**overrides) -> DecoderConfig:
    cfg = DecoderConfig(
        hidden_dim=DIM,
        num_heads=4,
        dim_feedforward=64,
        num_layers=3,
        num_queries=8,
        first_selected_queries=16,
        num_guiding_tokens=4,
        variant="dimaskdino",
    )
    for key, value in overrides.items():
        setattr(cfg, key, value)
    return cfg


def features(batch: int = 2) -> MultiScaleFeatures:
    tokens = sum(h * w for h, w in SHAPES)
    return MultiScaleFeatures(torch.randn(batch, tokens, DIM), SHAPES, torch.randn(batch, DIM, 16, 16))


def test_oldm_reports_each_box_refined_twice():
    torch.manual_seed(0)
    oldm = ObjectLevelDetection(2, DIM, 64, 0.0, 4)
    delta = torch.tensor([0.1, -0.2, 0.3, 0.05])
    oldm.bbox_embed.layers[-1].bias.data.copy_(delta)  # last layer weight is zero: a constant delta
    logits = torch.randn(2, 5, 4)
    out, normed, reported, refined = oldm(torch.randn(2, 5, DIM), logits)
    assert out.shape == (2, 5, DIM) and len(normed) == len(reported) == 2
    for i, boxes in enumerate(reported):
        torch.testing.assert_close(boxes, (logits + (i + 2) * delta).sigmoid(), atol=1e-5, rtol=0)
    torch.testing.assert_close(refined, (logits + 2 * delta).sigmoid(), atol=1e-5, rtol=0)
    # the last refinement keeps its graph (it anchors the decoder); the box it refines was detached, so
    # the constant delta gets d(sum sigmoid)/d(delta) once, not twice
    refined.sum().backward()
    slope = (refined * (1 - refined)).detach().sum((0, 1))
    torch.testing.assert_close(oldm.bbox_embed.layers[-1].bias.grad, slope, atol=1e-5, rtol=1e-5)


def test_guiding_tokens_are_the_most_confident_queries():
    torch.manual_seed(0)
    bato = BalanceAwareTokens(DIM, 64, 0.0, 4, num_guiding_tokens=2).eval()
    class_head, mask_head = torch.nn.Linear(DIM, 5), torch.nn.Linear(DIM, DIM)
    feats = features(1)
    queries, query_pos = torch.randn(1, 6, DIM), torch.randn(1, 6, DIM)
    with torch.no_grad():
        order = class_head(queries).max(-1)[0][0].argsort(descending=True)
        memory, mask_features = bato(
            queries, query_pos, feats.memory, SHAPES, feats.mask_features, class_head, mask_head
        )
        assert memory.shape == feats.memory.shape and mask_features.shape == feats.mask_features.shape

        def rerun(index: int, coarse_change: bool = False):
            q = queries.clone()
            q[0, index] += 0.01  # small enough to keep the ranking
            mem = feats.memory.clone()
            if coarse_change:
                mem[0, 0] += 1.0  # a token of the coarse level
            return bato(q, query_pos, mem, SHAPES, feats.mask_features, class_head, mask_head)

        unchanged = rerun(int(order[-1]))
        torch.testing.assert_close(unchanged[0], memory)
        changed = rerun(int(order[0]))
        assert not torch.allclose(changed[0], memory)
        # only the finest (last) level feeds the mask features; memory tokens are updated independently
        coarse = rerun(int(order[-1]), coarse_change=True)
        torch.testing.assert_close(coarse[1], mask_features)
        torch.testing.assert_close(coarse[0][:, 1:], memory[:, 1:])


def test_decoder_outputs_and_denoising_queries_do_not_steer_matching_queries():
    torch.manual_seed(0)
    cfg = tiny_decoder_config()
    decoder = DIMaskDINODecoder(cfg, num_classes=5, mask_dim=DIM, num_levels=len(SHAPES)).eval()
    feats = features()
    with torch.no_grad():
        plain, dn_outputs = decoder(feats)
        assert dn_outputs is None
        assert len(plain.aux) == cfg.num_layers and plain.pred_masks.shape == (2, 8, 16, 16)
        assert plain.interm.logits.shape == (2, 16, 5)
        oldm = plain.extra["oldm_outputs"]
        assert len(oldm) == cfg.ti_layers and oldm[0].boxes.shape == (2, 16, 4) and oldm[0].masks is None
        # denoising queries, blocked from the matching queries' self-attention, must not leak through BATO
        # (enough of them that some would rank among the guiding tokens if BATO scored them)
        pad = 24
        blocked = torch.zeros(pad + 8, pad + 8, dtype=torch.bool)
        blocked[pad:, :pad] = True
        denoising = (torch.randn(2, pad, DIM), inverse_sigmoid(torch.rand(2, pad, 4)), blocked)
        with_dn, dn_outputs = decoder(feats, denoising)
    assert dn_outputs["pred_logits"].shape == (2, pad, 5)
    torch.testing.assert_close(with_dn.pred_logits, plain.pred_logits)
    torch.testing.assert_close(with_dn.pred_masks, plain.pred_masks)


@pytest.mark.parametrize(
    "overrides, mask_dim, message",
    [
        ({"num_guiding_tokens": 9}, DIM, "num_guiding_tokens <= num_queries"),
        ({"first_selected_queries": 4}, DIM, "num_queries <= first_selected_queries"),
        ({"num_layers": 1}, DIM, "more than 1 decoder layers"),
        ({"learn_tgt": True}, DIM, "two_stage"),
        ({}, 2 * DIM, "mask_dim"),
    ],
)
def test_invalid_configs(overrides, mask_dim, message):
    with pytest.raises(ValueError, match=message):
        DIMaskDINODecoder(tiny_decoder_config(**overrides), 5, mask_dim, len(SHAPES))


def test_training_step_reaches_the_di_parameters():
    torch.manual_seed(0)
    cfg = get_config(
        "demo",
        [
            "model.decoder.variant=dimaskdino",
            "model.decoder.num_layers=2",
            "model.decoder.num_queries=20",
            "model.decoder.first_selected_queries=60",
            "model.decoder.num_guiding_tokens=10",
            "model.decoder.dn_num=6",
            "model.pixel_decoder.num_encoder_layers=1",
            "model.loss.num_points=256",
        ],
    )
    model = build_model(cfg.model).train()
    with torch.no_grad():  # the zero-initialised last box layer would stop gradients to the layers before it
        model.predictor.oldm.bbox_embed.layers[-1].weight.normal_(0, 0.01)
    masks = torch.zeros(2, 96, 128, dtype=torch.bool)
    masks[0, 10:50, 20:60] = masks[1, 40:90, 5:30] = True
    target = {
        "labels": torch.tensor([3, 7]),
        "boxes": torch.tensor([[20.0, 10, 60, 50], [5, 40, 30, 90]]),
        "masks": masks,
    }
    losses = model([torch.rand(3, 96, 128), torch.rand(3, 96, 128)], [target, target])
    oldm_keys = {
        f"oldm_loss_{k}_{i}" for k in ("ce", "bbox", "giou") for i in range(cfg.model.decoder.ti_layers)
    }
    assert oldm_keys <= set(losses)
    assert all(torch.isfinite(v) for v in losses.values())
    sum(losses.values()).backward()
    for name, param in model.predictor.named_parameters():
        if name.startswith(("oldm.", "bato.")):
            assert param.grad is not None and param.grad.abs().sum() > 0, name
