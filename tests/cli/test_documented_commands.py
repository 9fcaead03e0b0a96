"""Every `maskdino ...` command in the shell blocks of the README and the data/training docs is valid as
written: the command line parses (flags exist, required ones are there), its preset exists and its
`key=value` overrides are config keys of the right type. (The data flags themselves run for real in
test_own_data.py on tiny data.)"""

from __future__ import annotations

import re
import shlex
from pathlib import Path

import pytest

from maskdino.cli.main import build_parser
from maskdino.config import Config
from maskdino.presets import resolve_preset

REPO = Path(__file__).resolve().parents[2]
DOCUMENTS = ("README.md", "docs/datasets.md", "docs/training.md")
SHELL_BLOCK = re.compile(r"```(?:bash|sh|shell)\n(.*?)```", re.DOTALL)


def documented_commands(document: str) -> list[str]:
    """The `maskdino` command lines of a markdown file's shell blocks (continuations joined, comments cut);
    `torchrun ... -m maskdino.cli.main ARGS` counts as `maskdino ARGS`."""
    commands = []
    for block in SHELL_BLOCK.findall((REPO / document).read_text()):
        for line in block.replace("\\\n", " ").splitlines():
            words = shlex.split(line, comments=True)
            if "maskdino.cli.main" in words:
                words = ["maskdino", *words[words.index("maskdino.cli.main") + 1 :]]
            elif "maskdino" in words:
                words = words[words.index("maskdino") :]
            else:
                continue
            if len(words) > 1:
                commands.append(shlex.join(words))
    return commands


COMMANDS = [(document, command) for document in DOCUMENTS for command in documented_commands(document)]


def test_the_documents_hold_the_usage_commands() -> None:
    readme = [command for document, command in COMMANDS if document == "README.md"]
    for subcommand in (
        "train",
        "eval",
        "predict",
        "score coco",
        "score panoptic",
        "score semantic",
        "convert",
    ):
        assert any(command.startswith(f"maskdino {subcommand} ") for command in readme), subcommand
    datasets = " ".join(command for document, command in COMMANDS if document == "docs/datasets.md")
    for flag in ("--train-masks", "--val-masks", "--classes", "--iou-types"):
        assert flag in datasets


@pytest.mark.parametrize(("document", "command"), COMMANDS)
def test_documented_command_is_valid(document: str, command: str) -> None:
    try:
        args = build_parser().parse_args(shlex.split(command)[1:])
    except SystemExit as exit_:
        pytest.fail(f"{document}: `{command}` does not parse (exit {exit_.code})")
    if getattr(args, "config", None) and not args.config.endswith((".yaml", ".yml", ".json")):
        resolve_preset(args.config)
    if getattr(args, "show", None):
        resolve_preset(args.show)
    Config().apply_overrides(getattr(args, "overrides", []))
