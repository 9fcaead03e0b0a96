"""Pictures of results and of training runs, with PIL and numpy (matplotlib only for the curves).

`draw_result(image, result, class_names)` works on any eval result dict of `MaskDINO` (or the same keys from
elsewhere): instances as translucent masks, box outlines and "label score" tags in distinct colours;
panoptic and semantic maps as class colours with segment outlines and a legend. `plot_training_curves`
draws loss terms, learning rate and AP/PQ/mIoU from a run's `metrics.jsonl`.
"""

from __future__ import annotations

import colorsys
import json
import logging
import re
from collections.abc import Mapping, Sequence
from pathlib import Path

import numpy as np
import torch
from PIL import Image, ImageDraw, ImageFont

LOGGER = logging.getLogger("maskdino.visualize")
ArrayLike = torch.Tensor | np.ndarray


def _numpy(x: ArrayLike) -> np.ndarray:
    return x.detach().cpu().numpy() if isinstance(x, torch.Tensor) else np.asarray(x)


def color(index: int) -> tuple[int, int, int]:
    """A bright colour for `index`; consecutive indices are far apart in hue (golden-ratio steps)."""
    hue = (index * 0.618033988749895) % 1.0
    saturation = (0.85, 0.6, 0.95)[index % 3]
    value = (0.95, 0.8)[(index // 3) % 2]
    r, g, b = colorsys.hsv_to_rgb(hue, saturation, value)
    return int(r * 255), int(g * 255), int(b * 255)


def _text_color(background: tuple[int, int, int]) -> tuple[int, int, int]:
    luminance = 0.299 * background[0] + 0.587 * background[1] + 0.114 * background[2]
    return (0, 0, 0) if luminance > 150 else (255, 255, 255)


def _font(image_height: int, image_width: int) -> ImageFont.ImageFont:
    size = int(np.clip(min(image_height, image_width) / 40, 10, 40))
    try:
        return ImageFont.load_default(size=size)
    except TypeError:  # Pillow < 10.1 has only the fixed bitmap font
        return ImageFont.load_default()


def _name(class_names: Sequence[str] | None, label: int) -> str:
    return (
        class_names[label] if class_names is not None and 0 <= label < len(class_names) else f"class {label}"
    )


def _as_rgb(image: ArrayLike | Image.Image) -> np.ndarray:
    array = np.asarray(image.convert("RGB")) if isinstance(image, Image.Image) else _numpy(image)
    if array.ndim != 3 or array.shape[2] != 3 or array.dtype != np.uint8:
        raise ValueError(f"image must be uint8 RGB [H, W, 3], got {array.dtype} {tuple(array.shape)}")
    return array


def _blend(canvas: np.ndarray, mask: np.ndarray, rgb: tuple[int, int, int], alpha: float) -> None:
    canvas[mask] = canvas[mask] * (1 - alpha) + np.array(rgb, dtype=np.float32) * alpha


def _outlines(ids: np.ndarray) -> np.ndarray:
    """Pixels whose right or lower neighbour belongs to another region of the id map `[H, W]`."""
    edge = np.zeros(ids.shape, dtype=bool)
    edge[:, :-1] |= ids[:, :-1] != ids[:, 1:]
    edge[:-1, :] |= ids[:-1, :] != ids[1:, :]
    return edge


def draw_instances(
    image: ArrayLike | Image.Image,
    result: Mapping[str, ArrayLike],
    class_names: Sequence[str] | None = None,
    score_threshold: float = 0.5,
    alpha: float = 0.45,
) -> np.ndarray:
    """Instances with score >= `score_threshold`: masks (if present), boxes and tags, one colour each.

    result: `boxes` xyxy pixels `[N, 4]`, `labels` `[N]`, `scores` `[N]`, optional `masks` bool `[N, H, W]`,
    all at the size of `image`. Higher scores are drawn last (on top). Returns uint8 `[H, W, 3]`.
    """
    canvas = _as_rgb(image).astype(np.float32)
    scores = _numpy(result["scores"]).astype(np.float64)
    keep = np.flatnonzero(scores >= score_threshold)[::-1]  # ascending score: the best ends on top
    boxes, labels = _numpy(result["boxes"])[keep], _numpy(result["labels"])[keep]
    masks = _numpy(result["masks"])[keep] if "masks" in result else None
    if masks is not None and masks.shape[1:] != canvas.shape[:2]:
        raise ValueError(
            f"masks are {masks.shape[1:]} but the image is {canvas.shape[:2]}: draw at the same size"
        )
    colors = [color(int(i)) for i in keep]
    if masks is not None:
        for mask, rgb in zip(masks.astype(bool), colors):
            _blend(canvas, mask, rgb, alpha)
            canvas[_outlines(mask) & mask] = rgb
    picture = Image.fromarray(canvas.round().astype(np.uint8))
    draw = ImageDraw.Draw(picture)
    font = _font(*canvas.shape[:2])
    line = max(1, round(min(canvas.shape[:2]) / 300))
    for box, label, score, rgb in zip(boxes, labels, scores[keep], colors):
        x0, y0, x1, y1 = (float(v) for v in box)
        draw.rectangle((x0, y0, x1, y1), outline=rgb, width=line)
        tag = f"{_name(class_names, int(label))} {score:.2f}"
        left, top, right, bottom = draw.textbbox((0, 0), tag, font=font)
        width, height = right - left + 4, bottom - top + 4
        ty = y0 - height if y0 - height >= 0 else y0  # above the box, or inside when at the top edge
        tx = min(max(x0, 0), max(canvas.shape[1] - width, 0))
        draw.rectangle((tx, ty, tx + width, ty + height), fill=rgb)
        draw.text((tx + 2 - left, ty + 2 - top), tag, fill=_text_color(rgb), font=font)
    return np.asarray(picture).copy()


def draw_label_map(
    image: ArrayLike | Image.Image,
    ids: np.ndarray,
    classes: Mapping[int, int],
    class_names: Sequence[str] | None = None,
    alpha: float = 0.6,
    max_legend: int = 20,
) -> np.ndarray:
    """Colour the regions of an id map `[H, W]` by class (`classes`: region id -> class), outline each
    region and append a legend of the classes by area. Regions not in `classes` are left uncoloured."""
    canvas = _as_rgb(image).astype(np.float32)
    if ids.shape != canvas.shape[:2]:
        raise ValueError(
            f"label map is {ids.shape} but the image is {canvas.shape[:2]}: draw at the same size"
        )
    area: dict[int, int] = {}
    region_ids, counts = np.unique(ids, return_counts=True)
    for region, count in zip(region_ids.tolist(), counts.tolist()):
        if region not in classes:
            continue
        cls = int(classes[region])
        _blend(canvas, ids == region, color(cls), alpha)
        area[cls] = area.get(cls, 0) + count
    canvas[_outlines(ids)] = 255
    legend = [(color(c), _name(class_names, c)) for c in sorted(area, key=lambda c: -area[c])]
    return _with_legend(canvas.round().astype(np.uint8), legend, max_legend)


def draw_panoptic(
    image: ArrayLike | Image.Image,
    panoptic: Mapping,
    class_names: Sequence[str] | None = None,
    alpha: float = 0.6,
) -> np.ndarray:
    """A panoptic result {"segments" `[H, W]`, "segments_info"}: class colours, segment outlines (so
    neighbouring instances of one class stay apart) and a legend."""
    segments = _numpy(panoptic["segments"]).astype(np.int64)
    classes = {int(s["id"]): int(s["category_id"]) for s in panoptic["segments_info"]}
    return draw_label_map(image, segments, classes, class_names, alpha)


def draw_semantic(
    image: ArrayLike | Image.Image,
    semantic: ArrayLike,
    class_names: Sequence[str] | None = None,
    alpha: float = 0.6,
) -> np.ndarray:
    """Per-class scores `[C, H, W]` (arg-maxed) or a label map `[H, W]`: class colours and a legend."""
    semantic = _numpy(semantic)
    labels = semantic.argmax(0) if semantic.ndim == 3 else semantic.astype(np.int64)
    present = np.unique(labels).tolist()
    return draw_label_map(image, labels, {c: c for c in present}, class_names, alpha)


def draw_result(
    image: ArrayLike | Image.Image,
    result: Mapping,
    class_names: Sequence[str] | None = None,
    score_threshold: float = 0.5,
    kind: str = "auto",
) -> np.ndarray:
    """One picture of a result dict. kind: "instances", "panoptic", "semantic" or "auto" (panoptic when
    present, else instances when present, else semantic)."""
    if kind == "auto":
        kind = "panoptic" if "panoptic" in result else "instances" if "scores" in result else "semantic"
    if kind == "instances" and "scores" in result:
        return draw_instances(image, result, class_names, score_threshold)
    if kind in ("panoptic", "semantic") and kind in result:
        draw = draw_panoptic if kind == "panoptic" else draw_semantic
        return draw(image, result[kind], class_names)
    raise ValueError(f"cannot draw {kind!r}: the result has keys {sorted(result)}")


def _with_legend(
    picture: np.ndarray, entries: list[tuple[tuple[int, int, int], str]], limit: int
) -> np.ndarray:
    """`picture` with a white panel on its right listing (colour swatch, name) rows."""
    if not entries:
        return picture
    shown = entries[:limit]
    rows = [*shown, ((255, 255, 255), f"+{len(entries) - limit} more")] if len(entries) > limit else shown
    font = _font(*picture.shape[:2])
    probe = ImageDraw.Draw(Image.new("RGB", (1, 1)))
    text_h = max(probe.textbbox((0, 0), "Ag", font=font)[3], 1)
    row_h, pad = text_h + 6, 6
    text_w = max(probe.textbbox((0, 0), name, font=font)[2] for _, name in rows)
    width = pad * 3 + row_h + text_w
    height = max(picture.shape[0], pad * 2 + row_h * len(rows))
    canvas = Image.new("RGB", (picture.shape[1] + width, height), (255, 255, 255))
    canvas.paste(Image.fromarray(picture), (0, 0))
    draw = ImageDraw.Draw(canvas)
    x = picture.shape[1] + pad
    for i, (rgb, name) in enumerate(rows):
        y = pad + i * row_h
        if i < len(shown):
            draw.rectangle((x, y + 2, x + row_h - 4, y + row_h - 2), fill=rgb, outline=(0, 0, 0))
        draw.text((x + row_h + pad, y + 3), name, fill=(0, 0, 0), font=font)
    return np.asarray(canvas).copy()


# Metric keys worth a curve: the headline number of each evaluator (`bbox/AP`, `panoptic/PQ`, `sem_seg/mIoU`).
_HEADLINE = re.compile(r"(^|/)(AP|PQ|mIoU)$")
# Per-layer copies of a loss term (`loss_mask_3`, `loss_ce_interm`, `loss_bbox_dn_0`) are left out.
_LOSS_TERM = re.compile(r"^loss_[a-z]+$")


def read_metrics(path: str | Path) -> list[dict]:
    """The JSON lines of `path` that carry an `iter`; malformed lines are skipped with one warning."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"metrics file not found: {path}")
    rows, bad = [], 0
    for line in path.read_text().splitlines():
        if not line.strip():
            continue
        try:
            row = json.loads(line)
        except json.JSONDecodeError:
            bad += 1
            continue
        if isinstance(row, dict) and isinstance(row.get("iter"), int | float):
            rows.append(row)
    if bad:
        LOGGER.warning("%s: skipped %d line(s) that are not JSON", path, bad)
    return rows


def plot_training_curves(metrics_jsonl: str | Path, out_png: str | Path) -> Path:
    """Plot total loss and its terms (log scale), learning rate and AP/PQ/mIoU over iterations to a PNG.

    `metrics_jsonl` holds one JSON object per line with `iter` and any of `loss`, `loss_<term>`, `lr`, and
    evaluator metrics such as `bbox/AP` (the trainer's `metrics.jsonl`). Panels without data are omitted.
    """
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    rows = read_metrics(metrics_jsonl)
    series: dict[str, list[tuple[float, float]]] = {}
    for row in rows:
        for key, value in row.items():
            if key != "iter" and isinstance(value, int | float) and np.isfinite(value):
                series.setdefault(key, []).append((row["iter"], float(value)))
    panels = [
        (
            "loss",
            sorted((k for k in series if k == "loss" or _LOSS_TERM.match(k)), key=lambda k: k != "loss"),
            True,
        ),
        ("learning rate", [k for k in series if k == "lr"], False),
        ("evaluation", sorted(k for k in series if _HEADLINE.search(k)), False),
    ]
    panels = [p for p in panels if p[1]]
    if not panels:
        raise ValueError(f"{metrics_jsonl} has no iter lines with loss, lr or AP/PQ/mIoU values to plot")
    figure = Figure(figsize=(8, 3 * len(panels)), layout="constrained")
    FigureCanvasAgg(figure)
    axes = figure.subplots(len(panels), 1, sharex=True, squeeze=False)[:, 0]
    for ax, (title, keys, log_scale) in zip(axes, panels):
        for key in keys:
            its, values = zip(*series[key])
            ax.plot(
                its,
                values,
                label=key,
                linewidth=2.0 if key == "loss" else 1.0,
                marker="o" if len(its) < 20 else None,
            )
        if log_scale and all(v > 0 for k in keys for _, v in series[k]):
            ax.set_yscale("log")
        ax.set_title(title)
        ax.grid(alpha=0.3)
        ax.legend(fontsize="small", ncol=2)
    axes[-1].set_xlabel("iteration")
    out_png = Path(out_png)
    out_png.parent.mkdir(parents=True, exist_ok=True)
    figure.savefig(out_png, dpi=100)
    return out_png
