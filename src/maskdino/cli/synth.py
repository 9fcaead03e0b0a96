"""`maskdino synth --output DIR`: write the synthetic shapes dataset (see maskdino.data.synthetic)."""

from __future__ import annotations

import argparse

from maskdino.data.synthetic import SynthConfig, write_synthetic_dataset


def register(sub) -> None:
    parser = sub.add_parser(
        "synth", help="generate the synthetic shapes dataset (COCO instances/panoptic, semantic PNGs)"
    )
    parser.add_argument("--output", required=True, help="dataset folder (gets classes.txt, train/, val/)")
    parser.add_argument("--num-images", type=int, default=600, help="training images (default 600)")
    parser.add_argument("--num-val-images", type=int, default=50, help="held-out images (default 50)")
    parser.add_argument("--seed", type=int, default=0, help="the same seed writes the same files")
    parser.add_argument(
        "--image-size", type=int, default=SynthConfig.image_size, help="square side in pixels"
    )
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    if args.num_images < 0 or args.num_val_images < 0:
        raise ValueError("--num-images and --num-val-images must be >= 0")
    if args.image_size < 2 * SynthConfig.max_object_size:
        raise ValueError(f"--image-size must be at least {2 * SynthConfig.max_object_size} px")
    splits = write_synthetic_dataset(
        args.output, args.num_images, args.num_val_images, args.seed, SynthConfig(image_size=args.image_size)
    )
    for split, folder in splits.items():
        print(f"{split}: {folder} (instances.json, panoptic.json + panoptic/, semantic/, images/)")
    return 0
