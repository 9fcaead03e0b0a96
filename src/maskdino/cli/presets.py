"""`maskdino presets`: list the presets (our name, official YAML, parameters) or the config keys."""

from __future__ import annotations

import argparse

import torch

from maskdino.build import build_model
from maskdino.config import all_keys
from maskdino.presets import PRESETS, get_config


def register(sub) -> None:
    parser = sub.add_parser("presets", help="list presets and their official config names")
    parser.add_argument("--params", action="store_true", help="also count parameters (builds each on meta)")
    parser.add_argument("--keys", action="store_true", help="list every config key instead")
    parser.add_argument("--show", metavar="PRESET", help="print one preset's full config as JSON")
    parser.set_defaults(func=run)


def parameter_count(name: str) -> int:
    with torch.device("meta"):
        model = build_model(get_config(name))
    return sum(p.numel() for p in model.parameters())


def run(args: argparse.Namespace) -> int:
    if args.keys:
        print("\n".join(all_keys()))
        return 0
    if args.show:
        print(get_config(args.show).to_json())
        return 0
    for info in PRESETS.values():
        count = f"{parameter_count(info.name) / 1e6:8.2f}M  " if args.params else ""
        print(f"{info.name:30s} {count}{info.summary}")
        if info.official_yaml:
            print(
                f"{'':30s} {'':11s}configs/{info.official_yaml}"
                if args.params
                else f"{'':30s} configs/{info.official_yaml}"
            )
    return 0
