"""Build the trimmed official-reference fixtures under tests/data/reference from shared/reference.

The official outputs are several MB per config; tests keep what catches a mismatch: full final
logits/boxes, every auxiliary layer (first 100 queries), the encoder proposals, 4 mask maps, the
post-processed results and the state-dict inventories. Run: python tools/make_parity_fixtures.py
"""

from __future__ import annotations

import argparse
import gzip
import json
from pathlib import Path

import numpy as np

CONFIGS = ("r50_ins_4s", "r50_ins_hid1024_3s", "r50_pan", "r50_ade_sem", "di_r50_12ep")
AUX_QUERIES = 100
MASKS = 4


def trim(ref: dict) -> dict:
    out = {}
    for key, value in ref.items():
        if key.endswith("pred_masks32"):
            out[key.replace("pred_masks32", "pred_masks4")] = value[:MASKS]
        elif key.startswith(("aux", "oldm")) and key.endswith("pred_logits"):
            out[key] = value[:AUX_QUERIES]
        elif key == "sem/maxprob":
            out["sem/maxprob_every4"] = value[::4, ::4]
        else:
            out[key] = value
    return out


def write_fill_samples(reference: Path, output: Path) -> None:
    """Values of the reference fill rule for every distinct (name rule, shape) of two inventories, so the
    tests can check our implementation of the rule without the spec file: first 16 values, sum, sum of squares."""
    spec = {}
    exec(compile((reference / "fill.py").read_text(), "fill.py", "exec"), spec)
    names = {}
    for cfg in ("r50_ins_4s", "swinl_ins_5s", "di_r50_12ep", "r50_ade_sem"):
        inventory = json.loads((reference / f"keys_{cfg}.json").read_text())
        for name, shape, dtype in inventory["keys"]:
            if dtype.startswith("float"):
                names[name] = shape
    rows = {}
    for name, shape in sorted(names.items()):
        value = spec["fill"](name, shape).astype(np.float64).ravel()
        rows[name] = {
            "shape": shape,
            "head": value[:16].tolist(),
            "sum": value.sum(),
            "sumsq": (value**2).sum(),
        }
    with gzip.open(output / "fill_samples.json.gz", "wt") as f:
        json.dump(rows, f)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument(
        "--reference", default=Path(__file__).resolve().parents[2] / "shared" / "reference", type=Path
    )
    parser.add_argument(
        "--output", default=Path(__file__).resolve().parents[1] / "tests" / "data" / "reference", type=Path
    )
    args = parser.parse_args()
    args.output.mkdir(parents=True, exist_ok=True)
    for cfg in CONFIGS:
        z = np.load(args.reference / "parity" / f"ref_{cfg}.npz")
        ref = {k.split("/", 1)[1]: z[k] for k in z.files if k.startswith("astronaut/")}
        np.savez_compressed(args.output / f"ref_{cfg}.npz", **trim(ref))
    for path in sorted(args.reference.glob("keys_*.json")):
        with gzip.open(args.output / (path.name + ".gz"), "wt") as f:
            json.dump(json.loads(path.read_text()), f)
    write_fill_samples(args.reference, args.output)
    total = sum(p.stat().st_size for p in args.output.iterdir())
    print(f"wrote {args.output} ({total / 1e6:.2f} MB)")


if __name__ == "__main__":
    main()
