"""Trim the official MIMDet / Benchmarking-ViT reference outputs to what tests/mimdet/test_official_parity.py
compares (numpy only). Run from the repository root with the shared facts next to it:

    python tests/data/mimdet/trim_official.py ../shared

Keeps everything but the mapper image (the test rebuilds it from the COCO JPEG copied next to the output
and checks its sha256) and takes every second row and column of p2 and p3 (p4..p6 whole).
"""

from __future__ import annotations

import hashlib
import shutil
import sys
from pathlib import Path

import numpy as np

OUT = Path(__file__).parent / "official"
REFERENCES = ("mimdet_vit_b_dev", "bench_vit_b_dev")
IMAGE = "000000022892.jpg"  # COCO val2017 22892, the image of both references
STEPS = {"p2": 2, "p3": 2, "p4": 1, "p5": 1, "p6": 1}


def main(shared: Path) -> None:
    OUT.mkdir(exist_ok=True)
    shutil.copyfile(shared / "data" / "coco_subset" / "dev" / IMAGE, OUT / IMAGE)
    for name in REFERENCES:
        ref = np.load(shared / "reference" / "mimdet" / f"{name}.npz")
        kept = {key: ref[key] for key in ref.files if key != "image" and not key.startswith("fpn/")}
        kept["image_sha256"] = np.array(hashlib.sha256(np.ascontiguousarray(ref["image"])).hexdigest())
        kept["image_shape"] = np.array(ref["image"].shape)
        for level, step in STEPS.items():
            kept[f"fpn/{level}"] = ref[f"fpn/{level}"][:, ::step, ::step]
            kept[f"fpn_step/{level}"] = np.array(step)
        np.savez_compressed(OUT / f"{name}.npz", **kept)


if __name__ == "__main__":
    main(Path(sys.argv[1]))
