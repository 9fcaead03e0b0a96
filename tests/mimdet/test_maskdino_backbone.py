"""Beyond the papers: MIMDet's backbone (token sampling included) under Mask DINO's pixel decoder."""

from __future__ import annotations

from dataclasses import replace

import numpy as np
import torch
from PIL import Image

from maskdino.backbones.mimdet import MIMDetBackbone
from maskdino.build import build_model
from maskdino.model import MaskDINO
from maskdino.presets import get_config
from tests.mimdet.test_detector import two_images
from tests.mimdet.tiny import TINY

# the `demo` preset's reduced transformer, further shrunk; the backbone as in tests/mimdet/tiny.py
TINY_MASKDINO = (
    *[o for o in TINY if o.startswith("model.backbone.")],
    "model.pixel_decoder.conv_dim=32", "model.pixel_decoder.mask_dim=32", "model.pixel_decoder.dim_feedforward=64",
    "model.pixel_decoder.num_encoder_layers=1", "model.pixel_decoder.num_heads=2",
    "model.decoder.hidden_dim=32", "model.decoder.dim_feedforward=64", "model.decoder.num_layers=2",
    "model.decoder.num_heads=2", "model.decoder.num_queries=20", "model.decoder.dn_num=5",
    "model.loss.num_points=256",
)  # fmt: skip


def test_maskdino_trains_and_predicts_on_the_mimdet_backbone():
    cfg = get_config("maskdino_mimdet_vit_b", list(TINY_MASKDINO))
    torch.manual_seed(0)
    model = build_model(cfg)
    assert isinstance(model, MaskDINO) and isinstance(model.backbone, MIMDetBackbone)
    assert model.backbone.output_shape() == {
        "res2": (32, 4),
        "res3": (64, 8),
        "res4": (32, 16),
        "res5": (32, 32),
    }
    images, targets = two_images()
    losses = model.train()(images, targets)
    assert all(torch.isfinite(v) for v in losses.values())
    sum(losses.values()).backward()
    # the sampled ViT, the conv stem and the restoring decoder all learn through Mask DINO's losses
    for name in ("blocks.0.attn.qkv.weight", "stem.stages.0.0.weight", "decoder.conv_feat_proj.weight"):
        assert model.backbone.get_parameter(name).grad.abs().sum() > 0, name
    with torch.no_grad():
        results = model.eval()(images)
    assert [r["masks"].shape[1:] for r in results] == [image.shape[1:] for image in images]


def test_the_preset_is_the_r50_recipe_with_the_vit_b_backbone():
    preset, r50 = get_config("maskdino_mimdet_vit_b"), get_config("r50_ins_4s")
    mim = preset.model.backbone.mimdet
    assert preset.model.backbone.name == "mimdet" and (mim.embed_dim, mim.depth, mim.sample_ratio) == (
        768,
        12,
        0.5,
    )
    assert mim.pretrain_img_size == preset.input.image_size == 1024
    for section in ("pixel_decoder", "decoder", "loss", "test"):
        assert getattr(preset.model, section) == getattr(r50.model, section)
    assert (preset.input, preset.solver) == (r50.input, r50.solver)


def test_the_preset_backbone_gives_the_mimdet_detector_features(data_dir):
    """Same weights, same image: the preset's preprocessing and backbone give the features of the MIMDet
    ViT-B detector's (whose FPN matches the official one, test_official_parity.py). Only the grid of the
    stored position tables differs (1024 for LSJ); at MIMDet's 800 the checkpoints are interchangeable."""
    preset = get_config("maskdino_mimdet_vit_b")
    detector_cfg = get_config("mimdet_vit_b_sr05")
    assert replace(preset.model.backbone.mimdet, pretrain_img_size=800) == detector_cfg.model.backbone.mimdet
    torch.manual_seed(0)
    maskdino = build_model(
        get_config("maskdino_mimdet_vit_b", ["model.backbone.mimdet.pretrain_img_size=800"])
    )
    detector = build_model(detector_cfg)
    maskdino.backbone.load_state_dict(detector.backbone.state_dict(), strict=True)
    image = Image.open(data_dir / "mimdet" / "coco4" / "000000000802.jpg").convert("RGB").resize((320, 240))
    tensor = torch.from_numpy(np.asarray(image).copy()).permute(2, 0, 1).float() / 255.0
    with torch.no_grad():
        batch = maskdino.eval().preprocess([tensor])
        ours = maskdino.backbone(batch.pixels)
        detector_batch, detector_sizes = detector.eval().transform([tensor])
        reference = detector.backbone(detector_batch, detector_sizes)
    assert torch.equal(batch.pixels, detector_batch) and batch.image_sizes == detector_sizes == [(240, 320)]
    assert ours.keys() == reference.keys() == {"res2", "res3", "res4", "res5"}
    for level in ours:
        torch.testing.assert_close(ours[level], reference[level], rtol=0, atol=0)
