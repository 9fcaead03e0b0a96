"""Build the trimmed training-step and initialisation fixtures under tests/data/reference from
shared/reference/parity (see tests/data/reference/SOURCE.md).

Training steps: the two input images and targets are the same for every config and are stored once
(`train_inputs_dev.npz`); per config we keep the seed, every weighted loss, the gradient norms, the
gradients of small parameters in full and, for larger ones, the first `SAMPLES` of the reference's fixed
flat indices with their values. Initialisation: the per-parameter statistics without the backbone (its
initial values are replaced by ImageNet weights in the official recipe and the tests do not compare
them). Run: python tools/make_training_fixtures.py
"""

from __future__ import annotations

import argparse
import gzip
import json
from pathlib import Path

import numpy as np

TRAIN_CONFIGS = ("r50_ins_4s", "r50_ade_sem", "di_r50_12ep")
INIT_CONFIGS = ("r50_ins_4s", "di_r50_12ep")
SAMPLES = 256


def split_training_step(z) -> tuple[dict, dict]:
    """(shared inputs, per-config arrays) of one `train_<name>_dev.npz`."""
    inputs, case = {"seed": z["seed"]}, {"seed": z["seed"]}
    for key in z.files:
        if key.startswith("input"):
            inputs[key] = z[key]
        elif key.startswith(("loss/", "grad_norm/", "grad/")) or key == "loss_total":
            case[key] = z[key]
        elif key.startswith("grad_index/"):
            name = key.removeprefix("grad_index/")
            case[key] = z[key][:SAMPLES].astype(np.int32)
            case[f"grad_sample/{name}"] = z[f"grad_sample/{name}"][:SAMPLES]
    return inputs, case


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument(
        "--reference", default=Path(__file__).resolve().parents[2] / "shared" / "reference", type=Path
    )
    parser.add_argument(
        "--output", default=Path(__file__).resolve().parents[1] / "tests" / "data" / "reference", type=Path
    )
    args = parser.parse_args()
    parity = args.reference / "parity"
    shared_inputs = None
    for name in TRAIN_CONFIGS:
        with np.load(parity / f"train_{name}_dev.npz") as z:
            inputs, case = split_training_step(z)
        if shared_inputs is None:
            shared_inputs = inputs
            np.savez_compressed(args.output / "train_inputs_dev.npz", **inputs)
        elif inputs.keys() != shared_inputs.keys() or any(
            not np.array_equal(inputs[k], shared_inputs[k]) for k in inputs
        ):
            raise SystemExit(
                f"train_{name}_dev.npz has other inputs than {TRAIN_CONFIGS[0]}: store them apart"
            )
        np.savez_compressed(args.output / f"train_{name}_dev.npz", **case)
    for name in INIT_CONFIGS:
        stats = json.loads((parity / f"init_{name}.json").read_text())
        stats["params"] = {k: v for k, v in stats["params"].items() if not k.startswith("backbone.")}
        with gzip.open(args.output / f"init_{name}.json.gz", "wt") as f:
            json.dump(stats, f)
    written = [args.output / "train_inputs_dev.npz"]
    written += [args.output / f"train_{n}_dev.npz" for n in TRAIN_CONFIGS]
    written += [args.output / f"init_{n}.json.gz" for n in INIT_CONFIGS]
    print(f"wrote {len(written)} files ({sum(p.stat().st_size for p in written) / 1e6:.2f} MB)")


if __name__ == "__main__":
    main()
