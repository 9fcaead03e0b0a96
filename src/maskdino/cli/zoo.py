"""`maskdino zoo [NAME]`: the released checkpoints the presets load, their reported metrics and licences,
and which are in the cache; with NAME, everything about one entry."""

from __future__ import annotations

import argparse

from maskdino.checkpoints.download import cache_path, download_url, known_entry, needs_manual_download
from maskdino.checkpoints.zoo import ZOO, ZooEntry

COLUMNS = ("name", "kind", "preset", "box AP", "mask AP", "PQ", "mIoU", "licence", "cached")


def register(sub) -> None:
    parser = sub.add_parser(
        "zoo", help="list the released checkpoints (names for --weights / from_pretrained)"
    )
    parser.add_argument("name", nargs="?", help="show one entry: its URL, file name, cache path and notes")
    parser.add_argument("--urls", action="store_true", help="add each entry's download URL to the table")
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    if args.name:
        print(describe(known_entry(args.name)))
        return 0
    rows = [_row(entry) + ((download_url(entry),) if args.urls else ()) for entry in ZOO]
    header = COLUMNS + (("url",) if args.urls else ())
    widths = [max(len(str(cell)) for cell in column) for column in zip(header, *rows)]
    for line in (header, tuple("-" * w for w in widths), *rows):
        print("  ".join(str(cell).ljust(w) for cell, w in zip(line, widths)).rstrip())
    print(
        "\nLoad one with maskdino.from_pretrained(NAME), Predictor(NAME) or --weights NAME; files go to "
        f"{cache_path(ZOO[0]).parent} ($MASKDINO_HOME). `maskdino zoo NAME` shows its URL and release file."
    )
    return 0


def _row(entry: ZooEntry) -> tuple[str, ...]:
    metrics = entry.metrics
    values = (metrics.box_ap, metrics.mask_ap, metrics.pq, metrics.miou)
    cached = "yes" if cache_path(entry).is_file() else ("by hand" if needs_manual_download(entry) else "")
    return (
        entry.name,
        entry.kind,
        entry.preset,
        *("-" if v is None else f"{v:.1f}" for v in values),
        entry.licence.split(" ")[0],
        cached,
    )


def describe(entry: ZooEntry) -> str:
    reported = ", ".join(f"{k} {v}" for k, v in entry.metrics.reported().items()) or "-"
    lines = [
        f"name:      {entry.name}",
        f"kind:      {entry.kind}",
        f"preset:    {entry.preset}",
        f"file:      {entry.file_name}",
        f"published: {entry.url}",
        f"download:  {download_url(entry)}"
        + ("  (by hand, see below)" if needs_manual_download(entry) else ""),
        f"cache:     {cache_path(entry)}" + ("  (present)" if cache_path(entry).is_file() else ""),
        f"reported:  {reported}",
        f"licence:   {entry.licence}",
    ]
    if entry.note:
        lines.append(f"note:      {entry.note}")
    if needs_manual_download(entry):
        lines.append(entry.manual_step(cache_path(entry)))
    return "\n".join(lines)
