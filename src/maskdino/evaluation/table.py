"""Plain-text tables of metrics, for logs and the command line."""

from __future__ import annotations

from collections.abc import Mapping, Sequence


def _cell(value: object, float_format: str) -> str:
    if isinstance(value, float):
        return format(value, float_format)
    return "" if value is None else str(value)


def format_table(headers: Sequence[str], rows: Sequence[Sequence[object]], float_format: str = ".3f") -> str:
    """A pipe-separated table: first column left-aligned, the others right-aligned, floats formatted."""
    cells = [[str(h) for h in headers]] + [[_cell(v, float_format) for v in row] for row in rows]
    widths = [max(len(row[k]) for row in cells) for k in range(len(headers))]

    def line(row: list[str]) -> str:
        parts = [row[0].ljust(widths[0])] + [c.rjust(w) for c, w in zip(row[1:], widths[1:])]
        return "| " + " | ".join(parts) + " |"

    rule = "|" + "|".join("-" * (w + 2) for w in widths) + "|"
    return "\n".join([line(cells[0]), rule] + [line(row) for row in cells[1:]])


def metrics_table(
    metrics: Mapping[str, float], rows: Sequence[tuple[str, str]], columns: Sequence[str], corner: str = ""
) -> str:
    """One row per (label, key template): cells are `metrics[template.format(column)]`, e.g. the
    template "segm/{}" with the column "AP" reads "segm/AP". Absent keys give empty cells."""
    body = [
        [label] + [metrics.get(template.format(column)) for column in columns] for label, template in rows
    ]
    return format_table([corner, *columns], body)
