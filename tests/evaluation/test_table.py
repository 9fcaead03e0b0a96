"""Metric tables: alignment, float format, empty cells."""

from __future__ import annotations

from maskdino.evaluation.table import format_table, metrics_table


def test_format_table_layout() -> None:
    table = format_table(["", "AP", "N"], [["bbox", 50.45806, 3], ["segm", 7.0, None]])
    assert table.splitlines() == [
        "|      |     AP | N |",
        "|------|--------|---|",
        "| bbox | 50.458 | 3 |",
        "| segm |  7.000 |   |",
    ]


def test_metrics_table_reads_templated_keys() -> None:
    metrics = {"PQ": 40.0, "PQ_th": 50.0, "SQ_th": 80.0, "N_th": 2}
    table = metrics_table(metrics, [("All", "{}"), ("Things", "{}_th")], ["PQ", "SQ", "N"])
    assert table.splitlines()[2:] == [
        "| All    | 40.000 |        |   |",
        "| Things | 50.000 | 80.000 | 2 |",
    ]
