"""The synthetic image set: procedurally rendered shapes and textures, no files needed.

Each image (64x64 RGB by default) shows one object on a cluttered background.  A class is a pair:

* a coarse **shape**, which survives down-sampling: disc, square, triangle, ring, cross;
* a fine **texture** inside it: plain, stripes, checker, concentric rings, with a period of 3-4.5 px at
  64 px: at or beyond the Nyquist limit of a 32 px image (partly visible, partly aliased away) and far
  beyond that of a 16 px one (gone).

Class c has shape ``(c // 2) % 5`` and texture ``2 * (c // 10) + c % 2``, so any class count mixes both
cues; the default 10 classes are 5 shapes x {plain, stripes}, the maximum is 20.  A 16 px network can at
best tell the shape, so accuracy rises with resolution, and telling shapes apart in the clutter needs
width and depth.  Nuisances: object position, size, rotation, aspect ratio and colours; texture
orientation, period and phase; a smooth random colour background; up to two capsule-shaped distractors
behind the object (some striped like a textured object) and, a quarter of the time, one in front; grey
pixel noise.  The object spans 40-60% of the image.  A plain object is
painted in the mean of its two colours, so colour says nothing about texture once the stripes blur.

What the set rewards, and why.  The set is a fixed task, drawn the same for every candidate; no
candidate's scaling changes it, and its parameters follow from what a network must see (periods
against Nyquist limits, object sizes), never from which scaling method wins.  Like natural images
it holds cues at two scales, so no dimension is useless:

* **resolution** pays for the texture half of each class: the stripe period (1.5-2.25 px at 32 px)
  sits at the Nyquist limit of a 32 px input, so the texture becomes visible between about 32 and
  48 px and gains nothing beyond the native 64 px.  From a 32 px base this is the strongest single
  cue, so on the default grid resolution-heavy candidates are expected to lead (measured: at the
  proxy budget 1.4x the resolution beats 2x the depth by 10 points and 1.4x the width by 8,
  docs/evidence/proxy-probes-2026-11-23.md, fifth round): read a default search's winner as a
  statement about this data as much as about the network.  The texture is part of that lead, not
  all of it: with periods of 3-12 px (visible at 32 px) the lead over width fell from 8 to 4
  points, and on a set without background colour, rotation or noise it stayed at 28 (seventh round).
  The rest is other detail the 64 px render keeps at 45 px: 32 px images resized up to 45 px gain
  nothing, so the lead is information, not room in the network (eighth round);
* **width and depth** pay for telling five shapes apart among clutter, occluders and striped
  distractors (shape is half of each class at every resolution), and for combining shape with
  texture over a receptive field the size of the object.

Images are rendered in chunks, vectorised with torch over coordinate grids, from one seeded
``torch.Generator``: the same config gives the same bytes.
"""

import math

import torch

from search.data.images import DataConfig, DataError, ImageSet

SHAPES = ("disc", "square", "triangle", "ring", "cross")
TEXTURES = ("plain", "stripes", "checker", "rings")
MAX_SYNTHETIC_CLASSES = len(SHAPES) * len(TEXTURES)


def check_config(cfg: DataConfig) -> None:
    if not 2 <= cfg.num_classes <= MAX_SYNTHETIC_CLASSES:
        raise DataError(f"data.num_classes={cfg.num_classes!r} is not in 2..{MAX_SYNTHETIC_CLASSES}")
    if cfg.channels not in (1, 3):
        raise DataError(f"data.channels={cfg.channels!r} is not 1 or 3")
    if cfg.synthetic_size < 2 * cfg.num_classes:
        raise DataError(f"data.synthetic_size={cfg.synthetic_size!r} is too small: expected >= 2 * num_classes")


def render_set(n: int, cfg: DataConfig, stream: int, chunk: int = 500) -> ImageSet:
    """`n` images of balanced classes, rendered from random stream `stream` (same stream, same bytes)."""
    gen = torch.Generator().manual_seed(stream)
    labels = (torch.arange(n) % cfg.num_classes)[torch.randperm(n, generator=gen)]  # exactly balanced
    images = torch.empty(n, cfg.channels, cfg.native_size, cfg.native_size, dtype=torch.uint8)
    for start in range(0, n, chunk):
        rgb = _render(labels[start : start + chunk], cfg.native_size, gen)
        pixels = rgb.mean(1, keepdim=True) if cfg.channels == 1 else rgb
        images[start : start + chunk] = pixels.clamp_(0, 1).mul_(255).round_().to(torch.uint8)
    return ImageSet(images, labels, cfg.num_classes, "synthetic")


def _shape_distance(shape: int, u: torch.Tensor, v: torch.Tensor) -> torch.Tensor:
    """Signed distance (in object radii, < 0 inside) to a shape, at object coordinates u, v."""
    if shape == 0:  # disc
        return torch.hypot(u, v) - 1
    if shape == 1:  # square
        return torch.maximum(u.abs(), v.abs()) - 0.8
    if shape == 2:  # equilateral triangle, apothem 0.62
        sides = [u * math.cos(a) + v * math.sin(a) for a in (math.pi / 2, 7 * math.pi / 6, 11 * math.pi / 6)]
        return torch.maximum(torch.maximum(sides[0], sides[1]), sides[2]) - 0.62
    if shape == 3:  # ring from radius 0.5 to 1
        return (torch.hypot(u, v) - 0.75).abs() - 0.25
    u, v = u.abs(), v.abs()  # cross of two 2 x 0.6 bars
    return torch.minimum(torch.maximum(u - 0.3, v - 1), torch.maximum(v - 0.3, u - 1))


def _square_wave(phase: torch.Tensor) -> torch.Tensor:
    return (0.5 + 2 * torch.sin(phase)).clamp_(0, 1)  # sharp stripes with a soft edge against aliasing


def _texture(texture: int, along: torch.Tensor, across: torch.Tensor, period, phase) -> torch.Tensor:
    """Pattern in [0, 1] at offsets (along, across) in px from the object centre."""
    if texture == 1:  # stripes
        return _square_wave(along * (2 * math.pi / period) + phase)
    if texture == 2:  # checker: sin(a) sin(b) at period p * sqrt(2) has the spatial frequency of the stripes
        k = 2 * math.pi / (period * math.sqrt(2))
        return (0.5 + 2 * torch.sin(along * k + phase) * torch.sin(across * k)).clamp_(0, 1)
    if texture == 3:  # concentric rings
        return _square_wave(torch.hypot(along, across) * (2 * math.pi / period) + phase)
    return torch.full_like(along, 0.5)  # plain, in the mean colour: colour must not give the texture away


def _render(labels: torch.Tensor, size: int, gen: torch.Generator) -> torch.Tensor:
    """Float RGB images (B, 3, size, size), roughly in [0, 1], of the classes in ``labels``."""
    b, px = len(labels), size / 64  # lengths are given in pixels of a 64 px image

    def uniform(low, high, *shape):  # one draw per image, shaped to broadcast over (B, [3,] H, W)
        return low + (high - low) * torch.rand(b, *shape, 1, 1, generator=gen)

    def rotate(dx, dy, angle):  # offsets along and across the direction ``angle``
        cos, sin = angle.cos(), angle.sin()
        return dx * cos + dy * sin, dy * cos - dx * sin

    def fine_period():
        return uniform(3.0, 4.5) * px

    coords = torch.arange(size, dtype=torch.float32) + 0.5
    y, x = coords.view(1, size, 1), coords.view(1, 1, size)

    # Background: a 4x4 grid of random colours, smoothly interpolated (gradients and blotches at object scale,
    # so colour edges are not object edges); as a matrix product, which is much faster than F.interpolate.
    centres = (torch.arange(4) + 0.5) * size / 4
    weights = torch.exp(-(((coords[:, None] - centres) / (size / 4)) ** 2))
    weights /= weights.sum(1, keepdim=True)
    image = weights @ torch.rand(b, 3, 4, 4, generator=gen) @ weights.T

    def draw_capsule(front: bool) -> None:
        """A distractor: a line segment with round ends, from a dot to a bar; if absent, moved off the image."""
        present = torch.rand(b, 1, 1, generator=gen) < (0.25 if front else 0.5)
        cx, cy = torch.where(present, uniform(0, size), -1e4), uniform(0, size)
        half_length, half_width = uniform(0, 10 * px), uniform(0.75, 2.0 if front else 3.0) * px
        along, across = rotate(x - cx, y - cy, uniform(0, 2 * math.pi))
        distance = torch.hypot((along.abs() - half_length).clamp_(min=0), across)
        alpha = (0.5 + half_width - distance).clamp_(0, 1)[:, None]
        image.lerp_(uniform(0, 1, 3), alpha)
        if not front:  # some are striped, so that a fine texture alone does not mean "textured class"
            s = torch.nonzero(torch.rand(b, generator=gen) < 0.4)[:, 0]
            stripes = _square_wave(along[s] * (2 * math.pi / fine_period()[s]) + uniform(0, 2 * math.pi)[s])
            image[s] = image[s].lerp_(uniform(0, 1, 3)[s], alpha[s] * stripes[:, None])

    for _ in range(2):
        draw_capsule(front=False)

    # The object: its shape gives the silhouette, its texture the fine pattern inside.
    shape_ids, texture_ids = (labels // 2) % len(SHAPES), 2 * (labels // 10) + labels % 2
    cx, cy = uniform(0.3, 0.7) * size, uniform(0.3, 0.7) * size
    radius, stretch = uniform(0.2, 0.3) * size, torch.exp(uniform(-0.2, 0.2))
    turn, texture_turn, phase = (uniform(0, 2 * math.pi) for _ in range(3))
    period = fine_period()
    dx, dy = x - cx, y - cy
    alpha, pattern = torch.empty(b, size, size), torch.empty(b, size, size)
    for shape in range(len(SHAPES)):  # a loop over attribute values, vectorised over the images having them
        m = shape_ids == shape
        u, v = rotate(dx[m], dy[m], turn[m])
        distance = _shape_distance(shape, u / (radius[m] * stretch[m]), v * stretch[m] / radius[m])
        alpha[m] = (0.5 - distance * radius[m]).clamp_(0, 1)  # an antialiased edge about one pixel wide
    for texture in range(len(TEXTURES)):
        m = texture_ids == texture
        pattern[m] = _texture(texture, *rotate(dx[m], dy[m], texture_turn[m]), period[m], phase[m])
    base = uniform(0, 1, 3)
    shift = uniform(0.3, 0.6, 1) * torch.where(base.mean(1, keepdim=True) > 0.5, -1.0, 1.0)
    second = (base + shift + uniform(-0.1, 0.1, 3)).clamp_(0, 1)  # contrasting, so the texture shows
    image.lerp_(torch.lerp(base, second, pattern[:, None]), alpha[:, None])
    draw_capsule(front=True)  # an occluder, half of the time

    noise = torch.rand(b, 1, size, size, generator=gen).sub_(0.5)  # uniform grey noise, std 0.03..0.06
    return image.add_(noise.mul_(uniform(0.1, 0.2, 1)))
