"""Pictures of the demo: pictures side by side, and rows of them stacked into one sheet."""

from __future__ import annotations

from pathlib import Path

import numpy as np
from PIL import Image

GAP = 4  # white pixels between pictures
WHITE = (255, 255, 255)


def side_by_side(pictures: list[Image.Image], height: int | None = None) -> Image.Image:
    """The pictures in one row, each scaled to `height` (default: the first one's height)."""
    height = height or pictures[0].height
    scaled = [p.resize((round(p.width * height / p.height), height)) for p in pictures]
    row = Image.new("RGB", (sum(p.width for p in scaled) + GAP * (len(scaled) - 1), height), WHITE)
    x = 0
    for picture in scaled:
        row.paste(picture, (x, 0))
        x += picture.width + GAP
    return row


def picture_sheet(rows: list[list[np.ndarray | Image.Image]], out_jpg: Path, height: int = 256) -> Path:
    """Rows of pictures (all scaled to `height`), stacked top to bottom, as one JPEG."""
    made = [side_by_side([_image(p) for p in row], height) for row in rows]
    sheet = Image.new(
        "RGB", (max(r.width for r in made), sum(r.height for r in made) + GAP * (len(made) - 1)), WHITE
    )
    y = 0
    for row in made:
        sheet.paste(row, (0, y))
        y += row.height + GAP
    out_jpg.parent.mkdir(parents=True, exist_ok=True)
    sheet.save(out_jpg, quality=90)
    return out_jpg


def _image(picture: np.ndarray | Image.Image) -> Image.Image:
    return (
        picture.convert("RGB")
        if isinstance(picture, Image.Image)
        else Image.fromarray(picture).convert("RGB")
    )
