"""Locate the project's larger real datasets (`../shared/data`) for benchmarks and long runs.

Tests use the small copies under `tests/data/`; anything bigger goes through `shared_data_path`, which
names exactly what is missing and how to point at it.
"""

from __future__ import annotations

import os
from pathlib import Path

ENV_VAR = "MASKDINO_SHARED_DATA"


def shared_data_root() -> Path:
    """`$MASKDINO_SHARED_DATA`, else `../shared/data` beside the repository checkout."""
    if os.environ.get(ENV_VAR):
        return Path(os.environ[ENV_VAR]).expanduser()
    repo = Path(__file__).resolve().parents[3]
    return repo.parent / "shared" / "data"


def shared_data_path(*parts: str) -> Path:
    """Path to `parts` under the shared data root; FileNotFoundError naming the missing path if absent."""
    root = shared_data_root()
    path = root.joinpath(*parts)
    if not path.exists():
        raise FileNotFoundError(
            f"shared data not found: {path} (root {root}). Set {ENV_VAR} to the folder that holds "
            f"'{parts[0] if parts else ''}' (the project's shared/data), or run only the tests, which use tests/data."
        )
    return path
