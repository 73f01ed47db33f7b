"""Published figures the code must agree with (ImageNet, 1000 classes, 3 input channels).

FLOPs are multiply-adds of conv + linear layers, in billions (GFLOPs), at the resolution given
with each figure (where the source measured it, which is not always the paper's native size).
Every figure comes from a source outside this code; none is this code's own output.
"""

from __future__ import annotations

from typing import NamedTuple


class Published(NamedTuple):
    params: int
    gflops: float
    resolution: int  # input side (px) at which `gflops` was published
    params_exact: bool = True  # False where only a rounded figure was published


# EfficientNet-B0..B7 built from B0 with the official (width, depth, resolution) coefficients
# (tensorflow/tpu models/official/efficientnet/efficientnet_builder.py, efficientnet_params).
EFFICIENTNET_OFFICIAL: dict[str, tuple[float, float, int]] = {
    "efficientnet_b0": (1.0, 1.0, 224),
    "efficientnet_b1": (1.0, 1.1, 240),
    "efficientnet_b2": (1.1, 1.2, 260),
    "efficientnet_b3": (1.2, 1.4, 300),
    "efficientnet_b4": (1.4, 1.8, 380),
    "efficientnet_b5": (1.6, 2.2, 456),
    "efficientnet_b6": (1.8, 2.6, 528),
    "efficientnet_b7": (2.0, 3.1, 600),
}

# Sources: "torchvision" = the weights' metadata in torchvision.models (num_params and the GFLOPs
# torchvision measured, `_ops`, at the crop size of its IMAGENET1K_V1 transforms, given here as
# the resolution); the docs show the GFLOPs rounded to two decimals (e.g. EfficientNet_B2: 1.09).
PUBLISHED: dict[str, Published] = {
    # Howard et al. 2017 (MobileNets), Table 8 (1.0 MobileNet-224): 4.2 M params, 569 M mult-adds, 224 px
    "mobilenetv1": Published(4_230_000, 0.569, 224, params_exact=False),
    "mobilenetv2": Published(3_504_872, 0.301, 224),  # torchvision MobileNet_V2_Weights, 224 px
    "resnet18": Published(11_689_512, 1.814, 224),  # torchvision ResNet18_Weights, 224 px
    "resnet50": Published(25_557_032, 4.089, 224),  # torchvision ResNet50_Weights, 224 px
    "efficientnet_b0": Published(5_288_548, 0.386, 224),  # torchvision EfficientNet_B0_Weights, 224 px
    "efficientnet_b1": Published(7_794_184, 0.687, 240),  # torchvision EfficientNet_B1_Weights.IMAGENET1K_V1, 240 px
    # torchvision EfficientNet_B2_Weights, measured at its 288 px crop (not the native 260 px;
    # at 260 px only the paper's rounded 1.0 B is published: EFFICIENTNET_PAPER_GFLOPS)
    "efficientnet_b2": Published(9_109_994, 1.088, 288),
    "efficientnet_b3": Published(12_233_232, 1.827, 300),  # torchvision EfficientNet_B3_Weights, 300 px
    "efficientnet_b4": Published(19_341_616, 4.394, 380),  # torchvision EfficientNet_B4_Weights, 380 px
    "efficientnet_b5": Published(30_389_784, 10.266, 456),  # torchvision EfficientNet_B5_Weights, 456 px
    "efficientnet_b6": Published(43_040_704, 19.068, 528),  # torchvision EfficientNet_B6_Weights, 528 px
    "efficientnet_b7": Published(66_347_960, 37.746, 600),  # torchvision EfficientNet_B7_Weights, 600 px
}

# Tan & Le 2019, Table 2 ("#FLOPs", rounded as printed) at each network's native resolution
# (EFFICIENTNET_OFFICIAL): a second, looser reference (the paper rounds to two digits).
EFFICIENTNET_PAPER_GFLOPS: dict[str, float] = {
    "efficientnet_b0": 0.39, "efficientnet_b1": 0.70, "efficientnet_b2": 1.0, "efficientnet_b3": 1.8,
    "efficientnet_b4": 4.2, "efficientnet_b5": 9.9, "efficientnet_b6": 19.0, "efficientnet_b7": 37.0,
}


class Table3Row(NamedTuple):
    base: str
    method: str  # baseline | depth | width | resolution | compound
    d: float
    w: float
    r: float
    gflops: float  # as printed in the paper (one decimal)
    top1: float  # ImageNet top-1 %, as printed in the paper


# Tan & Le 2019, Table 3 (GFLOPs at 224 px x r). The paper gives compound coefficients only for MobileNetV1; for
# MobileNetV2 and ResNet-50 the (d, w, r) of the compound row is left as NaN.
_NAN = float("nan")
PAPER_TABLE3: tuple[Table3Row, ...] = (
    Table3Row("mobilenetv1", "baseline", 1, 1, 1, 0.6, 70.6),
    Table3Row("mobilenetv1", "width", 1, 2, 1, 2.2, 74.2),
    Table3Row("mobilenetv1", "resolution", 1, 1, 2, 2.2, 72.7),
    Table3Row("mobilenetv1", "compound", 1.4, 1.2, 1.3, 2.3, 75.6),
    Table3Row("mobilenetv2", "baseline", 1, 1, 1, 0.3, 72.0),
    Table3Row("mobilenetv2", "depth", 4, 1, 1, 1.2, 76.8),
    Table3Row("mobilenetv2", "width", 1, 2, 1, 1.1, 76.4),
    Table3Row("mobilenetv2", "resolution", 1, 1, 2, 1.2, 74.8),
    Table3Row("mobilenetv2", "compound", _NAN, _NAN, _NAN, 1.3, 77.4),
    Table3Row("resnet50", "baseline", 1, 1, 1, 4.1, 76.0),
    Table3Row("resnet50", "depth", 4, 1, 1, 16.2, 78.1),
    Table3Row("resnet50", "width", 1, 2, 1, 14.7, 77.7),
    Table3Row("resnet50", "resolution", 1, 1, 2, 16.4, 77.5),
    Table3Row("resnet50", "compound", _NAN, _NAN, _NAN, 16.7, 78.8),
)

# Tan & Le 2019, Section 4.2 (Eq. 3 step 1): the grid-search result for EfficientNet-B0 (alpha = depth, beta = width, gamma = resolution).
PAPER_ALPHA_BETA_GAMMA = (1.2, 1.1, 1.15)

# Tan & Le 2019, Table 2: ImageNet top-1 % (each at its native resolution) of EfficientNet-B0..B7 (the compound family).
EFFICIENTNET_TOP1: dict[str, float] = {
    "efficientnet_b0": 77.1, "efficientnet_b1": 79.1, "efficientnet_b2": 80.1, "efficientnet_b3": 81.6,
    "efficientnet_b4": 82.9, "efficientnet_b5": 83.6, "efficientnet_b6": 84.0, "efficientnet_b7": 84.3,
}
