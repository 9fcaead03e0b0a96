"""FrozenBatchNorm2d: detectron2's fixed-statistics BatchNorm."""

from __future__ import annotations

import torch
from torch import nn

from maskdino.layers.frozen_batchnorm import FrozenBatchNorm2d, freeze_batchnorm


def _bn_with_statistics(channels: int) -> nn.BatchNorm2d:
    generator = torch.Generator().manual_seed(0)
    bn = nn.BatchNorm2d(channels)
    with torch.no_grad():
        bn.weight.copy_(1.0 + 0.3 * torch.randn(channels, generator=generator))
        bn.bias.copy_(0.5 * torch.randn(channels, generator=generator))
        bn.running_mean.copy_(torch.randn(channels, generator=generator))
        bn.running_var.copy_(torch.rand(channels, generator=generator) * 2 + 0.1)
    return bn.eval()


def test_equals_batchnorm_in_eval_and_has_no_parameters():
    bn = _bn_with_statistics(16)
    frozen = FrozenBatchNorm2d(16)
    frozen.load_state_dict({k: v for k, v in bn.state_dict().items() if k != "num_batches_tracked"})
    x = torch.randn(2, 16, 5, 7, generator=torch.Generator().manual_seed(1)) * 3
    torch.testing.assert_close(frozen(x), bn(x), rtol=1e-6, atol=1e-6)
    assert list(frozen.parameters()) == []
    assert list(frozen.state_dict()) == ["weight", "bias", "running_mean", "running_var"]


def test_is_the_affine_formula_and_stays_frozen_in_train_mode():
    bn = _bn_with_statistics(4)
    frozen = FrozenBatchNorm2d.from_batchnorm(bn).train()
    x = torch.randn(3, 4, 2, 2, generator=torch.Generator().manual_seed(2))
    scale = bn.weight.detach() / torch.sqrt(bn.running_var + 1e-5)
    shift = bn.bias.detach() - bn.running_mean * scale
    torch.testing.assert_close(frozen(x), x * scale.view(1, -1, 1, 1) + shift.view(1, -1, 1, 1))
    running_mean = frozen.running_mean.clone()
    frozen(x + 10)
    assert torch.equal(frozen.running_mean, running_mean)


def test_fresh_instance_is_identity_and_passes_gradients():
    frozen = FrozenBatchNorm2d(3)
    x = torch.randn(1, 3, 4, 4, requires_grad=True)
    y = frozen(x)
    torch.testing.assert_close(y, x)
    y.sum().backward()
    torch.testing.assert_close(x.grad, torch.ones_like(x))


def test_freeze_batchnorm_replaces_nested_batchnorms():
    net = nn.Sequential(nn.Conv2d(3, 8, 1), _bn_with_statistics(8), nn.Sequential(_bn_with_statistics(8)))
    x = torch.randn(1, 3, 4, 4)
    with torch.no_grad():
        expected = net.eval()(x)
    frozen = freeze_batchnorm(net)
    assert frozen is net
    assert isinstance(net[1], FrozenBatchNorm2d) and isinstance(net[2][0], FrozenBatchNorm2d)
    torch.testing.assert_close(net.train()(x), expected)
    assert isinstance(freeze_batchnorm(nn.BatchNorm2d(2)), FrozenBatchNorm2d)
