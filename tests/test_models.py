"""Scaling rules, stage tables and builder: published counts, small inputs, training steps."""

from __future__ import annotations

import math
from decimal import Decimal

import pytest
import torch

from models import BASES, create, for_variant, get_base, round_filters, round_repeats, scale, scaled_resolution
from models.blocks import ConvBNAct, DropPath, ReLU6
from models.builder import build_model
from models.complexity import measure_spec
from models.kinds import KINDS, BlockKind, conv_macs
from models.macs import conv_linear_macs
from models.reference import PUBLISHED
from models.spec import spec_from_table
from models.zoo import zoo_rows
from search.results.tables import family_table


@pytest.mark.parametrize(
    "channels, width, expected",
    [
        (32, 1.0, 32),
        (1280, 1.1, 1408),  # B2 head
        (32, 1.8, 56),  # B6 stem: 57.6 -> 56
        (16, 0.5, 8),
        (16, 0.25, 8),  # never below the divisor
        (24, 0.35, 8),
        (119, 0.1, 16),  # 11.9 rounds to 8, which is >10% low: +8
        (199, 0.1, 24),  # 19.9 rounds to 16, which is >10% low: +8
        (40, 1.1, 48),  # 44 rounds half up
    ],
)
def test_round_filters(channels, width, expected):
    assert round_filters(channels, width) == expected
    assert expected % 8 == 0


@pytest.mark.parametrize(
    "repeats, depth, expected",
    [(25, 2.2, 55), (3, 1.1, 4), (4, 1.1, 5), (1, 1.1, 2), (3, 2.2, 7), (4, 0.5, 2), (1, 0.5, 1), (3, 1 / 3, 1)],
)
def test_round_repeats(repeats, depth, expected):
    assert round_repeats(repeats, depth) == expected


def test_round_repeats_is_exact_ceiling_of_decimal_product():
    for depth in (0.3, 0.7, 1.1, 1.15, 1.2, 1.4, 1.8, 2.2, 2.6, 3.1, 4.0):
        for repeats in range(1, 40):
            exact = math.ceil(Decimal(str(depth)) * repeats)
            assert round_repeats(repeats, depth) == max(1, exact), (repeats, depth)


def test_rounding_rejects_non_positive_multipliers():
    with pytest.raises(ValueError, match="width=0"):
        round_filters(32, 0)
    with pytest.raises(ValueError, match="depth=-1"):
        round_repeats(3, -1)


@pytest.mark.parametrize("base, r, expected", [(224, 1.0, 224), (224, 2.5, 560), (224, 2.0, 448), (32, 1.15, 37)])
def test_scaled_resolution(base, r, expected):
    assert scaled_resolution(base, r) == expected


def test_scaled_resolution_divisor():
    assert scaled_resolution(224, 1.15, divisor=8) == 256
    assert scaled_resolution(32, 0.1, divisor=8) == 8


def test_width_and_depth_below_one():
    spec = scale(get_base("efficientnet_b0"), depth=0.5, width=0.5)
    assert all(s.channels % 8 == 0 and s.channels >= 8 for s in spec.stages)
    assert [s.repeats for s in spec.stages] == [1, 1, 1, 2, 2, 2, 1]
    assert spec.stem_channels == 16 and spec.head_channels == 640


def test_unknown_base_lists_valid_names():
    with pytest.raises(ValueError, match=r"base='vgg' is not one of: mobilenetv1, mobilenetv2"):
        get_base("vgg")


@pytest.mark.parametrize("model, base, depth, width, resolution", zoo_rows())
def test_params_equal_published(model, base, depth, width, resolution):
    net, _ = create(base, depth, width)
    params = sum(p.numel() for p in net.parameters())
    ref = PUBLISHED[model]
    if ref.params_exact:
        assert params == ref.params
    else:
        assert params == pytest.approx(ref.params, rel=0.01)


def test_efficientnet_b0_structure():
    spec = get_base("efficientnet_b0")
    assert [(s.channels, s.repeats, s.stride, s.kernel, s.expand) for s in spec.stages] == [
        (16, 1, 1, 3, 1), (24, 2, 2, 3, 6), (40, 2, 2, 5, 6), (80, 3, 2, 3, 6),
        (112, 3, 1, 5, 6), (192, 4, 2, 5, 6), (320, 1, 1, 3, 6),
    ]
    net, _ = create("efficientnet_b0")
    se = net.blocks[1].branch if hasattr(net.blocks[1], "branch") else net.blocks[1]
    reduce = [m for m in se.modules() if m.__class__.__name__ == "SqueezeExcite"][0].reduce
    assert reduce.out_channels == 4  # 0.25 x the block's *input* (16), not its expanded 96
    # Stochastic depth linear in block index, reaching 0.2 (survival 0.8) at the last block;
    # only blocks with an identity shortcut carry it.
    rates = {i: m.rate for i, block in enumerate(net.blocks) for m in block.modules() if isinstance(m, DropPath)}
    assert len(rates) == 9
    assert all(rate == pytest.approx(0.2 * i / 15) for i, rate in rates.items())


@pytest.mark.parametrize("name", list(BASES))
@pytest.mark.parametrize("size, in_channels", [(28, 1), (32, 3), (64, 3)])
def test_small_variant_output_shape(name, size, in_channels):
    net, spec = create(name, depth=0.5, width=0.25, num_classes=7, in_channels=in_channels, variant="small")
    assert spec.total_stride == 16 and spec.stem_stride == 1
    net.eval()
    with torch.no_grad():
        features = net.head(net.blocks(net.stem(torch.zeros(2, in_channels, size, size))))
        logits = net(torch.zeros(2, in_channels, size, size))
    assert features.shape[-1] == math.ceil(size / 16)
    assert logits.shape == (2, 7)


def test_imagenet_variant_is_unchanged_and_unknown_variant_rejected():
    spec = get_base("resnet50")
    assert for_variant(spec, "imagenet") is spec and spec.total_stride == 32
    with pytest.raises(ValueError, match="variant='tiny' is not one of: imagenet, small"):
        for_variant(spec, "tiny")


@pytest.mark.parametrize("name", list(BASES))
def test_forward_backward_small(name):
    torch.manual_seed(0)
    net, _ = create(name, depth=0.5, width=0.5, num_classes=10, variant="small")
    x, y = torch.randn(4, 3, 32, 32), torch.tensor([0, 1, 2, 3])
    loss = torch.nn.functional.cross_entropy(net(x), y)
    loss.backward()
    grads = [p.grad for p in net.parameters()]
    assert torch.isfinite(loss)
    assert all(g is not None and torch.isfinite(g).all() for g in grads)
    assert any(g.abs().sum() > 0 for g in grads)


def test_relu6_in_place_matches_torch_and_saves_less():
    """Same values and gradients as nn.ReLU6 (the kinks at 0 and 6 included), and one saved tensor less."""
    leaf = torch.tensor([-1.0, 0.0, 2.5, 6.0, 7.0], requires_grad=True)
    ours = ReLU6()(leaf * 1.0)
    ours.backward(torch.arange(1.0, 6.0))
    expected_leaf = leaf.detach().clone().requires_grad_()
    expected = torch.nn.functional.relu6(expected_leaf)
    expected.backward(torch.arange(1.0, 6.0))
    assert torch.equal(ours, expected) and torch.equal(leaf.grad, expected_leaf.grad)
    assert leaf.grad.tolist() == [0.0, 0.0, 3.0, 0.0, 0.0]

    def saved_bytes(block):
        storages = {}

        def pack(t):
            storages[t.untyped_storage().data_ptr()] = t.untyped_storage().nbytes()
            return t

        with torch.autograd.graph.saved_tensors_hooks(pack, lambda t: t):
            torch.nn.Sequential(block, torch.nn.Conv2d(8, 8, 1))(torch.randn(4, 8, 16, 16))
        return sum(storages.values())

    torch_block = ConvBNAct(8, 8, act="relu6")
    torch_block[2] = torch.nn.ReLU6(inplace=True)
    one_activation = 4 * 8 * 16 * 16 * 4  # bytes
    assert saved_bytes(torch_block) - saved_bytes(ConvBNAct(8, 8, act="relu6")) == one_activation


def test_depthwise_init_keeps_pytorchs_group_blind_fan_out():
    """Measured (docs/evidence/proxy-probes-2026-11-23.md): the group-aware fan-out of the TF/timm init
    cost the proxy 23 points after 16 epochs. A depthwise 3x3 kernel starts at std sqrt(2 / (9 * C))."""
    torch.manual_seed(0)
    model, _ = create("mobilenetv2", num_classes=10)
    depthwise = [m for m in model.modules() if isinstance(m, torch.nn.Conv2d) and m.groups == m.out_channels > 1]
    assert len(depthwise) == 17
    for m in depthwise:
        assert m.weight.std().item() == pytest.approx(math.sqrt(2 / (9 * m.out_channels)), rel=0.15), m


def test_a_family_below_the_base_keeps_the_rounding_rules():
    """phi < 0 shrinks all three dimensions (search.phi_min); rounding keeps every count >= its floor."""
    rows = family_table("mobilenetv2", 1.2, 1.1, 1.15, range(-2, 2))
    assert [r["phi"] for r in rows] == [-2, -1, 0, 1]
    flops = [r["flops"] for r in rows]
    assert flops == sorted(flops) and len(set(flops)) == 4  # strictly smaller below phi = 0
    assert [r["resolution"] for r in rows] == [scaled_resolution(224, 1.15**phi) for phi in range(-2, 2)]
    assert rows[0]["d"] == pytest.approx(1.2**-2, abs=1e-4) and rows[0]["w"] == pytest.approx(1.1**-2, abs=1e-4)


class FusedMBConv(BlockKind):
    """EfficientNetV2's fused block (expanding 3x3 conv -> 1x1 projection): a kind the package lacks."""

    def build(self, stage, in_ch, stride, act, drop_path):
        mid = in_ch * stage.expand
        return torch.nn.Sequential(ConvBNAct(in_ch, mid, stage.kernel, stride, act=act), ConvBNAct(mid, stage.channels, 1, act=None))

    def macs(self, stage, size, in_ch, stride):
        mid = in_ch * stage.expand
        size, expand = conv_macs(size, in_ch, mid, stage.kernel, stride)
        return size, expand + conv_macs(size, mid, stage.channels, 1)[1]


def test_a_new_block_kind_is_one_class_in_kinds(monkeypatch):
    """The schema, the builder and the shape-only count all take a kind from models.kinds.KINDS."""
    table = {"stem_channels": 16, "resolution": 32, "stages": [
        {"block": "fused", "channels": 24, "repeats": 2, "stride": 2, "expand": 4},
        {"block": "mbconv", "channels": 32, "repeats": 1, "stride": 2, "expand": 6, "se_ratio": 0.25}]}
    with pytest.raises(ValueError, match="base.spec.stages\\[0\\].block='fused' is not one of: ds, mbconv, basic"):
        spec_from_table("fusednet", table)
    monkeypatch.setitem(KINDS, "fused", FusedMBConv())
    spec = spec_from_table("fusednet", table)
    assert conv_linear_macs(spec, 32, 10, 3) == measure_spec(spec, 32, 10, 3).flops > 0
    model = build_model(spec, 10, 3)
    assert model(torch.randn(2, 3, 32, 32)).shape == (2, 10)
