"""FLOPs / params / activations against the published figures and the paper's Table 3."""

from __future__ import annotations

import pandas as pd
import pytest
from torch import nn

from models import BASES, scaled_resolution
from models.reference import EFFICIENTNET_PAPER_GFLOPS, PAPER_TABLE3, PUBLISHED
from models.zoo import ZOO_COLUMNS, main, zoo_rows
from models import make
from models.complexity import count, measure, measure_spec, training_bytes


def test_flops_are_conv_and_linear_multiply_adds_only():
    net = nn.Sequential(
        nn.Conv2d(3, 8, 3, padding=1, bias=False), nn.BatchNorm2d(8), nn.ReLU(),
        nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(8, 10),
    )
    c = count(net, resolution=8)
    assert c.flops == 8 * 8 * 8 * 3 * 3 * 3 + 8 * 10
    assert c.fvcore_flops > c.flops  # batch norm and pooling are in fvcore's total only
    assert c.activations == 8 * 8 * 8 + 10
    assert c.params == 8 * 27 + 16 + 8 * 10 + 10
    assert net.training  # counting must not leave the model in eval mode


@pytest.mark.parametrize("model, base, depth, width, resolution", zoo_rows())
def test_gflops_within_one_percent_of_published(model, base, depth, width, resolution):
    ref = PUBLISHED[model]  # measured at the source's resolution (EfficientNet-B2: 288 px, not 260)
    gflops = measure(base, depth, width, ref.resolution).flops / 1e9
    assert gflops == pytest.approx(ref.gflops, rel=0.01)


@pytest.mark.parametrize("model, base, depth, width, resolution", [r for r in zoo_rows() if r[0] in EFFICIENTNET_PAPER_GFLOPS])
def test_efficientnet_gflops_within_five_percent_of_the_paper(model, base, depth, width, resolution):
    """The paper's Table 2 at the native resolution (B2: 1.0 B at 260 px): rounded, so looser."""
    gflops = measure(base, depth, width, resolution).flops / 1e9
    assert gflops == pytest.approx(EFFICIENTNET_PAPER_GFLOPS[model], rel=0.05)


# The paper's convention for these two rows cannot be recovered; ours is the official rule
# applied to every stage (README, "Design"): pin our figures so the documentation stays true.
DOCUMENTED_GAPS = {("resnet50", "depth"): 14.571, ("resnet50", "width"): 16.117}


@pytest.mark.parametrize("row", [r for r in PAPER_TABLE3 if r.d == r.d], ids=lambda r: f"{r.base}-{r.method}")
def test_table3_flops(row):
    res = scaled_resolution(BASES[row.base].resolution, row.r)
    gflops = measure(row.base, row.d, row.w, res).flops / 1e9
    if (row.base, row.method) in DOCUMENTED_GAPS:
        assert gflops == pytest.approx(DOCUMENTED_GAPS[(row.base, row.method)], rel=0.001)
    else:
        assert gflops == pytest.approx(row.gflops, rel=0.10)


def test_measure_traces_each_network_once():
    measure_spec.cache_clear()
    first = measure("mobilenetv2", 1.0, 0.5, 32, 10, 3, "small")
    again = measure("mobilenetv2", 1.0, 0.5, 32, 10, 3, "small")
    same_net = measure("mobilenetv2", 0.95, 0.5, 32, 10, 3, "small")  # ceil gives the same repeats
    other = measure("mobilenetv2", 1.0, 0.5, 40, 10, 3, "small")
    info = measure_spec.cache_info()
    assert first is again is same_net and other.flops > first.flops
    assert (info.hits, info.misses) == (2, 2)


def test_zoo_cli_writes_csv(tmp_path, capsys):
    path = tmp_path / "zoo.csv"
    assert main(["--csv", str(path)]) == 0
    table = pd.read_csv(path)
    assert list(table.columns) == ZOO_COLUMNS
    assert len(table) == 12 and table["gflops_dev_pct"].abs().max() < 1.0
    assert "efficientnet_b7" in capsys.readouterr().out


def test_training_memory_counts_weights_three_times_and_each_saved_tensor_once():
    # Linear saves its input (a view of the image batch, counted once) and its weight (a parameter:
    # already in the 3 x params of weights, gradients and momentum).
    model = nn.Sequential(nn.Flatten(), nn.Linear(3 * 4 * 4, 10))
    for batch in (2, 8, 128):
        assert training_bytes(model, 4, batch) == 4 * (3 * (48 * 10 + 10) + batch * 48)
        assert training_bytes(model, 4, batch, optimizer="adamw") == 4 * (4 * (48 * 10 + 10) + batch * 48)


def test_training_memory_grows_with_the_batch_by_the_saved_activations():
    model = make("mobilenetv2", 1.0, 0.5, "small", 10, 3)
    weights = 3 * 4 * sum(p.numel() for p in model.parameters())
    small, large = (training_bytes(model, 32, batch) - weights for batch in (64, 128))
    assert large == pytest.approx(2 * small, rel=0.01)
    assert large > 10 * weights  # at this size the activations, not the weights, decide the memory
    assert model.training  # left as it was
