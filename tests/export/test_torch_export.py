"""`torch.export` and `torch.compile` of the eval network on CPU agree with eager PyTorch."""

from __future__ import annotations

import shutil

import pytest
import torch

from maskdino.export import RawNetwork, export_program

TOLERANCE = 1e-4


@pytest.fixture(scope="module")
def images(astronaut_batch, demo_model) -> list[torch.Tensor]:
    """The real image as `forward_raw` takes it: float RGB [3, 128, 128] in [0, 1]."""
    batch = torch.from_numpy(astronaut_batch[0, :, :, :128])
    return [((batch * demo_model.pixel_std + demo_model.pixel_mean) / 255).clamp(0, 1)]


def max_difference(ours, eager) -> float:
    pairs = zip(
        (ours.pred_logits, ours.pred_boxes, ours.pred_masks),
        (eager.pred_logits, eager.pred_boxes, eager.pred_masks),
    )
    return max(float((a - b).abs().max()) for a, b in pairs)


def test_torch_export_of_the_raw_network_matches_eager(demo_model, astronaut_batch):
    batch = torch.from_numpy(astronaut_batch)
    program = export_program(demo_model, batch)
    with torch.no_grad():
        exported = program.module()(batch)
        eager = RawNetwork(demo_model)(batch)
    for ours, theirs in zip(exported, eager):
        assert ours.shape == theirs.shape
        assert float((ours - theirs).abs().max()) <= TOLERANCE


def test_torch_compile_of_forward_raw_matches_eager(demo_model, images):
    torch._dynamo.reset()
    compiled = torch.compile(demo_model.forward_raw, backend="eager")
    with torch.no_grad():
        assert max_difference(compiled(images), demo_model.forward_raw(images)) <= TOLERANCE
    torch._dynamo.reset()


@pytest.mark.slow
@pytest.mark.skipif(
    shutil.which("cc") is None and shutil.which("gcc") is None, reason="inductor needs a C compiler"
)
def test_torch_compile_inductor_of_forward_raw_matches_eager(demo_model, images):
    """The default backend generates C++ for the CPU: about 2.5 minutes on 2 cores."""
    torch._dynamo.reset()
    compiled = torch.compile(demo_model.forward_raw)
    with torch.no_grad():
        assert max_difference(compiled(images), demo_model.forward_raw(images)) <= TOLERANCE
    torch._dynamo.reset()


def test_torch_export_of_forward_raw(demo_model, images):
    class ForwardRaw(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.model = demo_model

        def forward(self, image):
            out = self.model.forward_raw([image])
            return out.pred_logits, out.pred_boxes, out.pred_masks

    exported = torch.export.export(ForwardRaw(), (images[0],), strict=False)
    with torch.no_grad():
        ours = exported.module()(images[0])
        eager = ForwardRaw()(images[0])
    assert all(torch.equal(a, b) for a, b in zip(ours, eager))
