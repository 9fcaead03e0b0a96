"""`maskdino convert SOURCE OUTPUT [--config PRESET]`: any weights -> our format.

SOURCE is an official `.pth` (with `--config`, unless its file name is a release name), a registry name
(downloaded), a training checkpoint or a `.safetensors`. OUTPUT ending in `.safetensors` is one file
(config inside); anything else becomes a `save_pretrained` folder.
"""

from __future__ import annotations

import argparse

from maskdino.build import build_model
from maskdino.checkpoints.load import load_weights, weights_config
from maskdino.checkpoints.native import is_safetensors, save_weights
from maskdino.checkpoints.pretrained import save_pretrained
from maskdino.presets import get_config


def register(sub) -> None:
    parser = sub.add_parser("convert", help="convert official (or any) weights to safetensors or a folder")
    parser.add_argument("source", help="official .pth, registry name (`maskdino zoo`), or our weights")
    parser.add_argument("output", help="a .safetensors file (config inside) or a save_pretrained folder")
    parser.add_argument(
        "--config", help="preset name or official YAML path (default: the one that comes with SOURCE)"
    )
    parser.add_argument("overrides", nargs="*", help="config overrides key=value")
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    cfg = get_config(args.config) if args.config else weights_config(args.source)
    if cfg is None:
        raise ValueError(f"{args.source} does not say which model it holds: pass --config <preset>")
    cfg = cfg.apply_overrides(list(args.overrides))
    model = load_weights(build_model(cfg), args.source)
    path = (
        save_weights(args.output, model, cfg)
        if is_safetensors(args.output)
        else save_pretrained(model, args.output)
    )
    print(
        f"wrote {path} ({sum(p.numel() for p in model.parameters()) / 1e6:.2f}M parameters, preset {cfg.name})"
    )
    return 0
