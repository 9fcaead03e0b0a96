"""`maskdino convert official.pth out.safetensors --config PRESET`: official checkpoint -> our format."""

from __future__ import annotations

import argparse

from maskdino.build import build_model
from maskdino.checkpoints.native import save_weights
from maskdino.checkpoints.official import load_official_checkpoint
from maskdino.presets import get_config


def register(sub) -> None:
    parser = sub.add_parser("convert", help="convert an official detectron2 checkpoint to safetensors")
    parser.add_argument("checkpoint", help="official .pth ({'model': state_dict})")
    parser.add_argument("output", help="output .safetensors (the config is stored inside)")
    parser.add_argument("--config", required=True, help="preset name or official YAML path")
    parser.add_argument("overrides", nargs="*", help="config overrides key=value")
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    cfg = get_config(args.config, args.overrides)
    model = build_model(cfg)
    load_official_checkpoint(model, args.checkpoint)
    path = save_weights(args.output, model, cfg)
    print(
        f"wrote {path} ({sum(p.numel() for p in model.parameters()) / 1e6:.2f}M parameters, preset {cfg.name})"
    )
    return 0
