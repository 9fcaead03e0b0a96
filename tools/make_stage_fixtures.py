"""Trim the official per-stage tensors of `r50_ins_4s` on the astronaut photo into
tests/data/stages/r50_ins_4s_astronaut.npz (what tests/test_stages.py compares each stage with).

Kept: the pixel decoder's four encoder maps (the finest two cut to their first channels) and its
mask features (first 8 channels, plus the per-channel means of all 256), the level sizes, the query
selection's top-k indices, and per decoder layer its reference boxes (all queries) and its normalised
output (first 32 queries). Run: python tools/make_stage_fixtures.py
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np

STAGES = ("pixdec", "query_select", "decoder")
CHANNELS = {"pixdec/multi_scale_0": 16, "pixdec/multi_scale_1": 64}
QUERIES = 32


def trim(stages: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
    out = {}
    for key, value in stages.items():
        if key.startswith("pixdec/multi_scale_"):
            channels = CHANNELS.get(key)
            out[key if channels is None else f"{key}__ch0_{channels - 1}"] = value[:, :channels]
        elif key == "pixdec/mask_features__ch0_63":
            out["pixdec/mask_features__ch0_7"] = value[:, :8]
        elif (
            key in ("pixdec/mask_features__chmean", "pixdec/mask_features__chabsmean")
            or key in ("pixdec/enc_spatial_shapes", "query_select/topk_call0_k300")
            or key.startswith("decoder/ref")
        ):
            out[key] = value
        elif key.startswith("decoder/hs_norm"):
            out[key] = value[:QUERIES]
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    repo = Path(__file__).resolve().parents[1]
    parser.add_argument("--reference", type=Path, default=repo.parent / "shared" / "reference" / "parity")
    parser.add_argument("--output", type=Path, default=repo / "tests" / "data" / "stages")
    args = parser.parse_args()
    stages = {}
    for stage in STAGES:
        with np.load(args.reference / f"stages_r50_ins_4s_astronaut_{stage}.npz") as z:
            stages.update({k: z[k] for k in z.files if k != "meta"})
    args.output.mkdir(parents=True, exist_ok=True)
    path = args.output / "r50_ins_4s_astronaut.npz"
    np.savez_compressed(path, **trim(stages))
    print(f"wrote {path} ({path.stat().st_size / 1e6:.2f} MB)")


if __name__ == "__main__":
    main()
