"""Smoke test of the benchmark harness on the small `demo` preset: the workers run, the JSON and the
tables have their structure. Timings are never asserted."""

from __future__ import annotations

import argparse
import json

import pytest
import torch

from maskdino import build_model, get_config
from maskdino.benchmark.peers import PEERS
from maskdino.benchmark.report import add_ratios, check_targets, format_report
from maskdino.benchmark.runner import add_arguments, plan, run_benchmarks
from maskdino.benchmark.workloads import STAGES, Peer, demo_photos, mixed_photos, stage_times


def _args(argv: list[str]) -> argparse.Namespace:
    parser = argparse.ArgumentParser()
    add_arguments(parser)
    return parser.parse_args(argv)


TINY = ["--presets", "demo", "--batches", "1", "--height", "96", "--width", "128", "--warmup", "0"]
TINY += ["--repeats", "1", "--stage-repeats", "1", "--peers"]
TINY += ["--train-presets", "demo", "--train-size", "96", "--train-warmup", "0", "--train-repeats", "1"]


def test_demo_photos_are_resized_real_images():
    images, files = demo_photos(3, 80, 120)
    assert len(images) == len(files) == 3
    assert all(tuple(image.shape) == (3, 80, 120) for image in images)
    assert all(float(image.min()) >= 0.0 and float(image.max()) <= 1.0 for image in images)
    assert float(images[0].std()) > 0.05  # a photo, not a constant


def test_mixed_photos_alternate_orientation_at_the_test_resize():
    images, files = mixed_photos(4, 128, 192)
    assert len(set(files)) == 4
    sizes = [tuple(image.shape[-2:]) for image in images]
    assert all(min(s) == 128 or max(s) == 192 for s in sizes)  # short side 128 unless the long side caps
    assert [h < w for h, w in sizes] == [True, False, True, False]


def test_stage_timer_runs_the_models_own_stages_in_channels_last():
    torch.manual_seed(0)
    model = build_model(get_config("demo")).eval()
    layouts = []
    stem = next(m for m in model.backbone.modules() if isinstance(m, torch.nn.Conv2d))
    stem.register_forward_pre_hook(
        lambda m, args: layouts.append(args[0].is_contiguous(memory_format=torch.channels_last))
    )
    images, _ = demo_photos(1, 96, 128)
    with torch.inference_mode():
        times = stage_times(model, images)
        model(images)
    assert set(times) == set(STAGES) and all(t >= 0 for t in times.values())
    assert layouts == [True, True]  # the timer's backbone stage sees what model(images) feeds it


def test_peers_are_part_of_the_package():
    assert {key: peer.builder for key, peer in PEERS.items()} == {
        "maskrcnn": "maskdino.benchmark.peers:maskrcnn_r50_fpn",
        "mask2former": "maskdino.benchmark.peers:mask2former_r50",
    }


def test_plan_quick_and_full():
    peers = {"maskrcnn": Peer("maskrcnn", "Mask R-CNN", "maskdino.benchmark.peers:maskrcnn_r50_fpn")}
    quick = plan(_args(["--quick", "--device", "cpu", "--peers"]), peers)
    assert [(s["kind"], s["name"], s["batch"]) for s in quick] == [
        ("inference", "r50_ins_4s", 1),
        ("train", "r50_ins_4s", 2),
    ]
    assert quick[0]["stages"] and quick[1]["train_size"] == 1024
    full = plan(_args(["--device", "cpu", "--train-presets"]), {})
    assert {(s["name"], s["batch"]) for s in full} == {
        (p, b) for p in ("r50_ins_4s", "r50_pan", "r50_ade_sem") for b in (1, 4)
    }
    assert all(s["stages"] == (s["batch"] == 1) and s["batching"] == "exact" for s in full)
    both = plan(
        _args(["--presets", "demo", "--batches", "4", "--batching", "exact", "grouped", "--peers"]), {}
    )
    assert [
        (s["name"], s["preset"], s["batching"], s["stages"]) for s in both if s["kind"] == "inference"
    ] == [
        ("demo", "demo", "exact", False),
        ("demo grouped", "demo", "grouped", False),
    ]
    with pytest.raises(ValueError, match="unknown peer"):
        plan(_args(["--peers", "nope"]), peers)


def test_ratios_targets_and_report():
    def row(name, source, seconds, mem):
        return {
            "name": name, "source": source, "kind": "inference", "batch": 1, "device": "cpu", "status": "ok",
            "median_s": seconds, "median_s_per_image": seconds, "images_per_s": 1 / seconds,
            "median_cpu_s_per_image": seconds, "memory": {"mem_mb": mem, "peak_mb": mem + 500},
        }  # fmt: skip

    rows = [row("r50_ins_4s", "maskdino", 4.0, 1000.0), row("mask2former", "peer", 5.0, 2000.0)]
    rows.append(row("maskrcnn", "peer", 2.0, 1000.0))
    rows.append({**row("hf", "peer", 1.0, 1.0), "status": "skipped", "reason": "not installed"})
    add_ratios(rows)
    assert rows[0]["ratios"]["mask2former"] == pytest.approx({"time": 0.8, "cpu_time": 0.8, "memory": 0.5})
    assert rows[0]["ratios"]["maskrcnn"] == pytest.approx({"time": 2.0, "cpu_time": 2.0, "memory": 1.0})
    checks = {(c["peer"], c["metric"]): c["met"] for c in check_targets(rows)}
    assert checks == {
        ("mask2former", "time"): True,
        ("maskrcnn", "time"): False,
        ("mask2former", "memory"): True,
    }
    report = format_report(rows, check_targets(rows))
    assert "time vs mask2former" in report and "0.80x" in report
    assert "skipped: inference hf batch 1: not installed" in report
    assert "NOT met" in report


def test_demo_run_writes_json_and_tables(tmp_path, capsys):
    output = tmp_path / "results.json"
    args = _args([*TINY, "--device", "cpu", "--threads", "1", "--output", str(output)])
    assert run_benchmarks(args, {}) == 0
    data = json.loads(output.read_text())
    assert {"system", "settings", "results", "targets"} <= set(data)
    assert data["system"]["threads"] == 1 and data["system"]["device"] == "cpu" and data["system"]["cpu"]
    inference, train = data["results"]
    assert (inference["kind"], inference["name"], inference["status"]) == ("inference", "demo", "ok")
    assert inference["image_sizes"] == [[96, 128]] and len(inference["photos"]) == 1
    assert len(inference["wall_s"]) == 1 and inference["median_s_per_image"] > 0
    memory = inference["memory"]
    assert memory["method"] and memory["weights_mb"] > 0 and memory["mem_mb"] >= memory["weights_mb"] > 0
    assert set(inference["stages"]["median_s"]) == set(STAGES)
    assert (train["kind"], train["status"], train["batch"], train["train_size"]) == ("train", "ok", 2, 96)
    assert train["memory"]["activation_mb"] >= 0
    printed = capsys.readouterr().out
    for header in ("inference", "stages (s)", "training step", "s/img", "mem MB"):
        assert header in printed
