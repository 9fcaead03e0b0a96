"""Write `official_keys.json.gz`: the state-dict inventory (name, shape, dtype) of each official MIMDet model.

Enumerates, by hand and without importing our package, the names and shapes that hustvl/MIMDet's model
definitions create under detectron2 0.6 + timm 0.4.12 for the README's configs. Sources (hustvl/MIMDet):
  models/mimdet.py   ConvStem.__init__ (L58-80), MIMDetEncoder.__init__ (pos_embed L122-124, blocks L129-141,
                     norm L142), MIMDetDecoder.__init__ (decoder_embed L264, conv_feat_proj L265,
                     decoder_pos_embed L270-272, decoder_blocks L274-286, decoder_norm L287)
  models/benchmarking.py  VisionTransformer.__init__ / BenchmarkingViTDet.__init__ (cls_token, head, norm set
                     to None; ms_adaptor; windowed/global RelativePositionBias with a persistent
                     relative_position_index buffer; pos_embed re-wrapped without the class-token row)
  configs/mimdet/mimdet_vit_{base,large}_mask_rcnn_fpn_sr_*.py and configs/benchmarking/*.py (arguments);
detectron2: FPN (fpn_lateral{s}/fpn_output{s}, bias only without norm, norm at `.norm`), StandardRPNHead
(conv.conv{k} with conv_dims [-1, -1], objectness_logits, anchor_deltas), FastRCNNConvFCHead (conv1..4 with
`.norm`, no bias under a norm; fc1), FastRCNNOutputLayers (cls_score C+1, bbox_pred 4C),
MaskRCNNConvUpsampleHead (mask_fcn1..4, deconv, predictor C); anchors and pixel_mean/std are not persistent.
Run: python make_inventory.py (stdlib only).
"""

import gzip
import json
from pathlib import Path

F32, I64 = "float32", "int64"


def linear(prefix, n_in, n_out):
    return [(f"{prefix}.weight", [n_out, n_in], F32), (f"{prefix}.bias", [n_out], F32)]


def norm(prefix, c):
    return [(f"{prefix}.weight", [c], F32), (f"{prefix}.bias", [c], F32)]


def batchnorm(prefix, c):
    return norm(prefix, c) + [
        (f"{prefix}.running_mean", [c], F32),
        (f"{prefix}.running_var", [c], F32),
        (f"{prefix}.num_batches_tracked", [], I64),
    ]


def timm_block(prefix, d, mlp_ratio=4):
    h = d * mlp_ratio
    return (
        norm(f"{prefix}.norm1", d)
        + linear(f"{prefix}.attn.qkv", d, 3 * d)
        + linear(f"{prefix}.attn.proj", d, d)
        + norm(f"{prefix}.norm2", d)
        + linear(f"{prefix}.mlp.fc1", d, h)
        + linear(f"{prefix}.mlp.fc2", h, d)
    )


def fpn(in_channels, out=256):
    keys = []
    for stage, c in zip((2, 3, 4, 5), in_channels):
        keys += [(f"backbone.fpn_lateral{stage}.weight", [out, c, 1, 1], F32)]
        keys += batchnorm(f"backbone.fpn_lateral{stage}.norm", out)
        keys += [(f"backbone.fpn_output{stage}.weight", [out, out, 3, 3], F32)]
        keys += batchnorm(f"backbone.fpn_output{stage}.norm", out)
    return keys


def heads(num_classes=80, c=256):
    keys = []
    for k in range(2):
        keys += [(f"proposal_generator.rpn_head.conv.conv{k}.weight", [c, c, 3, 3], F32)]
        keys += [(f"proposal_generator.rpn_head.conv.conv{k}.bias", [c], F32)]
    keys += [("proposal_generator.rpn_head.objectness_logits.weight", [3, c, 1, 1], F32)]
    keys += [("proposal_generator.rpn_head.objectness_logits.bias", [3], F32)]
    keys += [("proposal_generator.rpn_head.anchor_deltas.weight", [12, c, 1, 1], F32)]
    keys += [("proposal_generator.rpn_head.anchor_deltas.bias", [12], F32)]
    for k in range(1, 5):
        keys += [(f"roi_heads.box_head.conv{k}.weight", [c, c, 3, 3], F32)]
        keys += batchnorm(f"roi_heads.box_head.conv{k}.norm", c)
    keys += linear("roi_heads.box_head.fc1", c * 7 * 7, 1024)
    keys += linear("roi_heads.box_predictor.cls_score", 1024, num_classes + 1)
    keys += linear("roi_heads.box_predictor.bbox_pred", 1024, num_classes * 4)
    for k in range(1, 5):
        keys += [(f"roi_heads.mask_head.mask_fcn{k}.weight", [c, c, 3, 3], F32)]
        keys += batchnorm(f"roi_heads.mask_head.mask_fcn{k}.norm", c)
    keys += [("roi_heads.mask_head.deconv.weight", [c, c, 2, 2], F32), ("roi_heads.mask_head.deconv.bias", [c], F32)]
    keys += [("roi_heads.mask_head.predictor.weight", [num_classes, c, 1, 1], F32)]
    keys += [("roi_heads.mask_head.predictor.bias", [num_classes], F32)]
    return keys


def mimdet(embed, depth, out_channels, img_size=800, dec=512, dec_depth=4):
    p = "backbone.bottom_up"
    grid = img_size // 16
    keys = []
    widths = [3, embed // 8, embed // 4, embed // 2, embed]
    for i in range(4):
        keys += [(f"{p}.encoder.patch_embed.proj.{i}.0.weight", [widths[i + 1], widths[i], 3, 3], F32)]
        keys += norm(f"{p}.encoder.patch_embed.proj.{i}.1", widths[i + 1])
    keys += [(f"{p}.encoder.patch_embed.proj.3.3.weight", [embed, embed, 1, 1], F32)]
    keys += [(f"{p}.encoder.patch_embed.proj.3.3.bias", [embed], F32)]
    keys += [(f"{p}.encoder.pos_embed", [1, grid * grid + 1, embed], F32)]
    for i in range(depth):
        keys += timm_block(f"{p}.encoder.blocks.{i}", embed)
    keys += norm(f"{p}.encoder.norm", embed)
    keys += linear(f"{p}.decoder.decoder_embed", embed, dec)
    keys += linear(f"{p}.decoder.conv_feat_proj", embed, dec)
    keys += [(f"{p}.decoder.decoder_pos_embed", [1, grid * grid + 1, dec], F32)]
    for i in range(dec_depth):
        keys += timm_block(f"{p}.decoder.decoder_blocks.{i}", dec)
    keys += norm(f"{p}.decoder.decoder_norm", dec)
    return fpn(out_channels) + keys + heads()


def benchmarking(embed=768, depth=12, heads_=12, img_size=1024, window=16):
    p = "backbone.bottom_up"
    grid = img_size // 16
    keys = [(f"{p}.pos_embed", [1, grid * grid, embed], F32)]
    keys += [(f"{p}.patch_embed.proj.weight", [embed, 3, 16, 16], F32), (f"{p}.patch_embed.proj.bias", [embed], F32)]
    for i in range(depth):
        keys += timm_block(f"{p}.blocks.{i}", embed)
    deconv = lambda name: [(f"{name}.weight", [embed, embed, 2, 2], F32), (f"{name}.bias", [embed], F32)]  # noqa: E731
    keys += deconv(f"{p}.ms_adaptor.0.0") + norm(f"{p}.ms_adaptor.0.1", embed) + deconv(f"{p}.ms_adaptor.0.3")
    keys += deconv(f"{p}.ms_adaptor.1")
    for name, side in (("windowed_rel_pos_bias", window), ("global_rel_pos_bias", grid)):
        keys += [(f"{p}.{name}.relative_position_bias_table", [(2 * side - 1) ** 2, heads_], F32)]
        keys += [(f"{p}.{name}.relative_position_index", [side * side, side * side], I64)]
    return fpn([embed] * 4) + keys + heads()


INVENTORY = {
    "mimdet_vit_base_mask_rcnn_fpn_sr_0p5_800_1333_4xdec_coco_3x": mimdet(768, 12, [192, 384, 512, 512]),
    "mimdet_vit_large_mask_rcnn_fpn_sr_0p5_800_1333_4xdec_coco_3x": mimdet(1024, 24, [256, 512, 512, 512]),
    "benchmarking_mask_rcnn_base_FPN_100ep_LSJ_mae": benchmarking(),
}

if __name__ == "__main__":
    out = Path(__file__).with_name("official_keys.json.gz")
    with gzip.open(out, "wt") as f:
        json.dump({name: [list(entry) for entry in keys] for name, keys in INVENTORY.items()}, f)
    for name, keys in INVENTORY.items():
        print(name, len(keys), "keys")
