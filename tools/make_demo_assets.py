"""Build the bundled quick-start data (src/maskdino/assets/coco_demo) from shared/data/coco_subset/dev.

Deterministic selection: non-crowd images with 2-12 instances, smallest files first, 32 images; every
fourth goes to the held-out split used for evaluation and prediction. Images are byte copies; the jsons
keep the official annotations of the chosen images and all 80 categories.
Run: python tools/make_demo_assets.py
"""

from __future__ import annotations

import argparse
import json
import shutil
from collections import Counter
from pathlib import Path

NUM_IMAGES = 32


def main() -> None:
    here = Path(__file__).resolve().parents[1]
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument(
        "--source", type=Path, default=here.parent / "shared" / "data" / "coco_subset" / "dev"
    )
    parser.add_argument("--output", type=Path, default=here / "src" / "maskdino" / "assets" / "coco_demo")
    args = parser.parse_args()
    data = json.loads((args.source / "instances.json").read_text())
    counts = Counter(a["image_id"] for a in data["annotations"] if not a["iscrowd"])
    crowd = {a["image_id"] for a in data["annotations"] if a["iscrowd"]}
    candidates = sorted(
        (img for img in data["images"] if 2 <= counts[img["id"]] <= 12 and img["id"] not in crowd),
        key=lambda img: ((args.source / img["file_name"]).stat().st_size, img["id"]),
    )[:NUM_IMAGES]
    splits = {"train": [], "val": []}
    for i, img in enumerate(sorted(candidates, key=lambda img: img["id"])):
        splits["val" if i % 4 == 3 else "train"].append(img)
    (args.output / "images").mkdir(parents=True, exist_ok=True)
    for split, images in splits.items():
        ids = {img["id"] for img in images}
        subset = {
            "info": data["info"],
            "licenses": data["licenses"],
            "images": [dict(img, file_name=f"images/{Path(img['file_name']).name}") for img in images],
            "annotations": [a for a in data["annotations"] if a["image_id"] in ids],
            "categories": data["categories"],
        }
        (args.output / f"instances_{split}.json").write_text(json.dumps(subset))
        for img in images:
            shutil.copyfile(
                args.source / img["file_name"], args.output / "images" / Path(img["file_name"]).name
            )
    size = sum(p.stat().st_size for p in args.output.rglob("*") if p.is_file())
    print(
        f"wrote {args.output}: {len(splits['train'])} train + {len(splits['val'])} val images, {size / 1e6:.2f} MB"
    )


if __name__ == "__main__":
    main()
