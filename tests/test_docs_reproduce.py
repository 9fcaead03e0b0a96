"""docs/reproduce.md stays true: every command parses with our CLI, names a preset, passes the backbone
file that preset's official config starts from and splits the global batch of 16 as the page says."""

from __future__ import annotations

import re
import shlex
from pathlib import Path

from maskdino.checkpoints.backbone_weights import published_weights
from maskdino.cli.main import build_parser
from maskdino.cli.train import build_config
from maskdino.engine.distributed import batch_layout

PAGE = Path(__file__).resolve().parents[1] / "docs" / "reproduce.md"


def commands() -> list[str]:
    """The shell commands of the page's bash blocks, continuation lines joined, comments dropped."""
    blocks = re.findall(r"```bash\n(.*?)```", PAGE.read_text(), flags=re.S)
    lines = "\n".join(blocks).replace("\\\n", " ").splitlines()
    return [line.strip() for line in lines if line.strip() and not line.lstrip().startswith("#")]


def test_every_training_command_fits_our_cli_and_presets():
    table = dict(re.findall(r"^\| [^|]+ \| `([a-z0-9_]+)` \| `([^`]+)` \|", PAGE.read_text(), flags=re.M))
    trained = {"torchrun": set(), "maskdino": set()}
    for command in commands():
        words = shlex.split(command)
        if words[0] == "torchrun":
            processes = int(words[words.index("--nproc-per-node") + 1])
            argv = words[words.index("maskdino.cli.main") + 1 :]
        elif words[:2] == ["maskdino", "train"]:
            processes, argv = 1, words[1:]
        else:
            continue
        cfg = build_config(build_parser().parse_args(argv))
        assert table[cfg.name] == cfg.model.backbone.weights, command
        assert published_weights(cfg.model.backbone).file_name == cfg.model.backbone.weights, command
        solver = cfg.solver
        layout = batch_layout(
            solver.ims_per_batch, processes, solver.per_device_batch, solver.grad_accum_steps
        )
        assert (layout.per_device, layout.accum_steps) in ((2, 1), (2, 8), (1, 16)), command
        trained[words[0]].add(cfg.name)
    assert trained["torchrun"] == trained["maskdino"] == set(table)
    assert len(table) == 11
