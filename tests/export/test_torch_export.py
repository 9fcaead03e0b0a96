"""`torch.export` with dynamic batch, height and width, and `torch.compile`, agree with eager PyTorch."""

from __future__ import annotations

import shutil

import numpy as np
import pytest
import torch
from PIL import Image

from maskdino.export import RawNetwork
from tests.export.conftest import SHAPES, photo_batch
from tests.test_predictor import ASTRONAUT

TOLERANCE = 1e-4


@pytest.fixture(scope="module")
def images() -> list[torch.Tensor]:
    """A real photo as `forward_raw` takes it: float RGB [3, 128, 128] in [0, 1]."""
    photo = np.array(Image.open(ASTRONAUT).convert("RGB").resize((128, 128), Image.BILINEAR))
    return [torch.from_numpy(photo).permute(2, 0, 1).float() / 255]


def max_difference(ours, eager) -> float:
    pairs = zip(
        (ours.pred_logits, ours.pred_boxes, ours.pred_masks),
        (eager.pred_logits, eager.pred_boxes, eager.pred_masks),
    )
    return max(float((a - b).abs().max()) for a, b in pairs)


def test_one_program_serves_every_shape(program, demo):
    cfg, model = demo
    exported = program.module()
    for shape in SHAPES:
        batch = torch.from_numpy(photo_batch(shape, cfg))
        with torch.no_grad():
            ours, eager = exported(batch), RawNetwork(model)(batch)
        for a, b in zip(ours, eager):
            assert a.shape == b.shape and a.shape[0] == shape[0]
            assert float((a - b).abs().max()) <= TOLERANCE, shape
    ranges = {str(s): (int(r.lower), int(r.upper)) for s, r in program.range_constraints.items()}
    assert sorted(ranges.values()) == [(1, 1024), (3, 128), (3, 128), (96, 4096), (96, 4096)]


def test_torch_compile_of_forward_raw_matches_eager(demo, images):
    model = demo[1]
    torch._dynamo.reset()
    compiled = torch.compile(model.forward_raw, backend="eager")
    with torch.no_grad():
        assert max_difference(compiled(images), model.forward_raw(images)) <= TOLERANCE
    torch._dynamo.reset()


@pytest.mark.slow
@pytest.mark.skipif(
    shutil.which("cc") is None and shutil.which("gcc") is None, reason="inductor needs a C compiler"
)
def test_torch_compile_inductor_of_forward_raw_matches_eager(demo, images):
    """The default backend generates C++ for the CPU: about 2.5 minutes on 2 cores."""
    model = demo[1]
    torch._dynamo.reset()
    compiled = torch.compile(model.forward_raw)
    with torch.no_grad():
        assert max_difference(compiled(images), model.forward_raw(images)) <= TOLERANCE
    torch._dynamo.reset()
