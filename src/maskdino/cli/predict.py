"""`maskdino predict INPUT... --output DIR`: overlays and machine-readable results for image files.

INPUTs are files, folders (their .jpg/.jpeg/.png/.webp/.bmp files, not recursive) and glob patterns.
DIR receives:
  overlays/<name>.png     the picture with the result drawn on it
  results.json            COCO results (instance presets): bbox xywh, RLE segmentation, the dataset's own
                          category ids (stored with the weights by training, or from --dataset-json)
  panoptic/<name>.png     COCO-panoptic PNG (id = R + 256 G + 256^2 B) + panoptic.json (panoptic presets)
  semantic/<name>.png     per-pixel contiguous class index (presets with semantic output)
  images.json             image ids, file names, sizes, decoding notes, categories and failures
A file that cannot be read is reported, skipped and counted; the exit code is 1 if any input failed.
"""

from __future__ import annotations

import argparse
import glob
import json
import sys
from pathlib import Path

from PIL import Image
from tqdm import tqdm

from maskdino.checkpoints.errors import WeightsError
from maskdino.data.records import DatasetInfo
from maskdino.evaluation.results import instances_to_coco_results, panoptic_to_png, semantic_to_png, write_png
from maskdino.image_batch import BATCHING_MODES
from maskdino.predictor import ImagePrediction, Predictor
from maskdino.utils.file_access import check_output_dir
from maskdino.visualize import draw_result

IMAGE_EXTENSIONS = (".jpg", ".jpeg", ".png", ".webp", ".bmp")


def register(sub) -> None:
    parser = sub.add_parser("predict", help="predict image files; write overlays and COCO/PNG results")
    parser.add_argument("inputs", nargs="+", metavar="INPUT", help="image files, folders or glob patterns")
    parser.add_argument("--output", required=True, help="output folder")
    parser.add_argument(
        "--config",
        help="preset name, official YAML path or a run's config.yaml (default: the one stored in --weights)",
    )
    parser.add_argument(
        "--weights",
        help="registry name (`maskdino zoo`), save_pretrained folder, our .safetensors, a training checkpoint "
        "or an official .pth (none: random weights, with a warning)",
    )
    parser.add_argument("--device", default="cpu", help="cpu, cuda or cuda:N (default: cpu)")
    parser.add_argument(
        "--half",
        nargs="?",
        const="fp16",
        choices=("fp16", "bf16"),
        help="run the network in half precision (GPU)",
    )
    parser.add_argument(
        "--batch-size",
        type=int,
        default=1,
        help="images read and predicted together (default: 1); results do not depend on it",
    )
    parser.add_argument(
        "--batching",
        default="exact",
        choices=BATCHING_MODES,
        help="Mask DINO models: exact (default) gives each image bitwise its own result; grouped lets images "
        "that pad to the same size share a network pass (faster on a GPU, equal to float rounding)",
    )
    parser.add_argument(
        "--score-threshold",
        type=float,
        default=0.0,
        help="drop instances below this score (default: keep all)",
    )
    parser.add_argument("--top-k", type=int, help="keep at most this many instances per image (default: 100)")
    parser.add_argument(
        "--overlay-threshold",
        type=float,
        default=0.5,
        help="draw instances with at least this score (default: 0.5)",
    )
    parser.add_argument(
        "--dataset-json",
        help="COCO instances or panoptic json whose categories name the classes and give their ids "
        "(default: those stored with the weights)",
    )
    parser.add_argument("--no-overlays", action="store_true", help="write only the machine-readable results")
    parser.set_defaults(func=run)


def collect_inputs(inputs: list[str]) -> tuple[list[Path], list[str]]:
    """Expand files, folders and globs into image paths (input order, duplicates once), and problems."""
    paths: list[Path] = []
    problems: list[str] = []
    for item in inputs:
        path = Path(item)
        if path.is_dir():
            found = sorted(p for p in path.iterdir() if p.is_file() and p.suffix.lower() in IMAGE_EXTENSIONS)
            if not found:
                problems.append(f"{item}: folder holds no images ({', '.join(IMAGE_EXTENSIONS)})")
            paths.extend(found)
        elif path.is_file():
            paths.append(path)
        elif glob.has_magic(item):
            found = sorted(Path(p) for p in glob.glob(item, recursive=True) if Path(p).is_file())
            if not found:
                problems.append(f"{item}: pattern matches no files")
            paths.extend(found)
        else:
            problems.append(f"{item}: no such file or folder")
    return list(dict.fromkeys(paths)), problems


def image_ids(paths: list[Path]) -> list[int]:
    """COCO-style file names (`000000037777.jpg`) give their number as id; otherwise ids are 1..N."""
    stems = [p.stem for p in paths]
    if all(s.isdigit() for s in stems) and len({int(s) for s in stems}) == len(stems):
        return [int(s) for s in stems]
    return list(range(1, len(paths) + 1))


def output_names(paths: list[Path]) -> list[str]:
    """File stems, made unique with `_2`, `_3`... where inputs share one."""
    used: set[str] = set()
    names = []
    for path in paths:
        name, count = path.stem, 1
        while name in used:
            count += 1
            name = f"{path.stem}_{count}"
        used.add(name)
        names.append(name)
    return names


class ResultWriter:
    """Writes each image's files as it comes and the json files at the end."""

    def __init__(self, out_dir: Path, info: DatasetInfo, overlay_threshold: float, overlays: bool):
        self.out_dir, self.info = out_dir, info
        self.overlay_threshold, self.overlays = overlay_threshold, overlays
        self.images: list[dict] = []
        self.instances: list[dict] | None = None  # stays None for presets without instance results
        self.panoptic: list[dict] = []

    def add(self, item: ImagePrediction, name: str, image_id: int) -> None:
        result, image = item.result, item.image
        height, width = image.shape[:2]
        self.images.append(
            {"id": image_id, "file_name": item.source, "height": height, "width": width, "notes": item.notes}
        )
        if self.overlays:
            overlay = draw_result(image, result, self.info.class_names, self.overlay_threshold)
            path = self.out_dir / "overlays" / f"{name}.png"
            path.parent.mkdir(parents=True, exist_ok=True)
            Image.fromarray(overlay).save(path)
        if "scores" in result:
            if self.instances is None:
                self.instances = []
            self.instances.extend(instances_to_coco_results(image_id, result, self.info.dataset_ids))
        if "panoptic" in result:
            rgb, segments = panoptic_to_png(
                result["panoptic"]["segments"], result["panoptic"]["segments_info"], self.info.dataset_ids
            )
            write_png(rgb, self.out_dir / "panoptic" / f"{name}.png")
            self.panoptic.append(
                {"image_id": image_id, "file_name": f"{name}.png", "segments_info": segments}
            )
        if "semantic" in result:
            labels = result["semantic"].argmax(0).numpy()
            write_png(semantic_to_png(labels), self.out_dir / "semantic" / f"{name}.png")

    def finish(self, failures: list[str]) -> None:
        categories = [
            {"id": int(i), "name": n, "isthing": int(t)}
            for i, n, t in zip(self.info.dataset_ids, self.info.class_names, self.info.isthing)
        ]
        if self.instances is not None:
            _write_json(self.out_dir / "results.json", self.instances)
        if self.panoptic:
            _write_json(
                self.out_dir / "panoptic.json", {"annotations": self.panoptic, "categories": categories}
            )
        _write_json(
            self.out_dir / "images.json",
            {"images": self.images, "categories": categories, "failed": failures},
        )


def _write_json(path: Path, data) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(data))


def _error(message: str) -> int:
    print(f"maskdino predict: error: {message}", file=sys.stderr)
    return 2


def run(args: argparse.Namespace) -> int:
    paths, failures = collect_inputs(args.inputs)
    if not paths:
        return _error("no images to predict:\n  " + "\n  ".join(failures))
    out_dir = check_output_dir(args.output)
    try:
        predictor = Predictor(
            args.config,
            args.weights,
            device=args.device,
            half=args.half or False,
            score_threshold=args.score_threshold,
            top_k=args.top_k,
            dataset_json=args.dataset_json,
            batching=args.batching,
        )
    except WeightsError as err:
        return _error(str(err))
    writer = ResultWriter(out_dir, predictor.info, args.overlay_threshold, not args.no_overlays)
    names, ids = output_names(paths), image_ids(paths)
    progress = tqdm(
        predictor.predict_paths(paths, args.batch_size), total=len(paths), unit="image", disable=None
    )
    done = 0
    for item, name, image_id in zip(progress, names, ids):
        for note in item.notes:
            tqdm.write(f"{item.source}: {note}", file=sys.stderr)
        if item.error is not None:
            tqdm.write(f"skipped: {item.error}", file=sys.stderr)
            failures.append(item.error)
            continue
        writer.add(item, name, image_id)
        done += 1
    writer.finish(failures)
    summary = f"processed {done} image(s), {len(failures)} failed"
    print(summary + (":\n  " + "\n  ".join(failures) if failures else f"; results in {out_dir}"))
    return 1 if failures else 0
