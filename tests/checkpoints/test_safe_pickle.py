"""The restricted unpickler: reads detectron2-style weight pickles, refuses anything that would run code."""

from __future__ import annotations

import pickle
from pathlib import Path

import numpy as np
import pytest
import torch

from maskdino.checkpoints.safe_pickle import UnsafePickleError, load_pickle
from tests.checkpoints.pickles import write_python2_pickle


class WritesMarker:
    """Unpickling this with `pickle.load` creates the marker file (through `open`)."""

    def __init__(self, marker: Path):
        self.marker = marker

    def __reduce__(self):
        return (open, (str(self.marker), "w"))


def test_python2_numpy_pickle_reads_with_latin1(tmp_path):
    arrays = {"res2.0.conv1.weight": np.arange(24, dtype=np.float32).reshape(2, 3, 2, 2) - 7.5,
              "stem.conv1.norm.running_var": np.array([1e-5, 0.25, 3.0], dtype=np.float32),
              "counter": np.array(7, dtype=np.int64)}  # fmt: skip
    path = tmp_path / "R-50.pkl"
    write_python2_pickle(path, {"model": arrays, "__author__": "torchvision", "matching_heuristics": True})
    assert b"numpy.core.multiarray\n_reconstruct" in path.read_bytes()  # the numpy 1 name, as old files
    loaded = load_pickle(path)
    assert loaded["__author__"] == "torchvision" and loaded["matching_heuristics"] is True
    for name, array in arrays.items():
        np.testing.assert_array_equal(loaded["model"][name], array)
        assert loaded["model"][name].dtype == array.dtype


def test_torch_tensors_pickled_with_pickle_dump_read_back(tmp_path):
    """The layout of detectron2-converted Swin pickles: torch tensors written by `pickle.dump`."""
    state = {
        "patch_embed.proj.weight": torch.randn(8, 3, 4, 4),
        "layers.0.blocks.1.attn_mask": torch.ones(4, 9, 9),
    }
    path = tmp_path / "swin.pkl"
    with path.open("wb") as f:
        pickle.dump({"model": state, "__author__": "third_party"}, f)
    loaded = load_pickle(path)["model"]
    for name, tensor in state.items():
        torch.testing.assert_close(loaded[name], tensor, rtol=0, atol=0)


def test_a_pickle_that_runs_code_is_refused_and_runs_nothing(tmp_path):
    # the payload really runs code under pickle.load: the control marker appears
    control = tmp_path / "control"
    pickle.loads(pickle.dumps(WritesMarker(control))).close()
    assert control.exists()

    marker = tmp_path / "marker"
    path = tmp_path / "evil.pkl"
    path.write_bytes(pickle.dumps({"model": {"w": np.zeros(2)}, "x": WritesMarker(marker)}))
    with pytest.raises(UnsafePickleError, match=r"refusing to unpickle .*evil\.pkl: it names io\.open"):
        load_pickle(path)
    assert not marker.exists()
    # the classic payload, a protocol-2 call of os.system("true"), is refused by name before any call
    path.write_bytes(b"\x80\x02cposix\nsystem\nq\x00X\x04\x00\x00\x00trueq\x01\x85q\x02Rq\x03.")
    with pytest.raises(UnsafePickleError, match=r"posix\.system"):
        load_pickle(path)


def test_truncated_pickle_is_reported_with_its_file(tmp_path):
    path = tmp_path / "R-50.pkl"
    write_python2_pickle(
        path, {"model": {"w": np.ones((64, 64), dtype=np.float32)}, "__author__": "torchvision"}
    )
    path.write_bytes(path.read_bytes()[:5000])
    with pytest.raises(ValueError, match=r"cannot read .*R-50\.pkl as a pickle .*truncated"):
        load_pickle(path)
