"""Shared fixtures: where the real data lives, and small helpers for tests."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
import torch

PROJECT_ROOT = Path(__file__).resolve().parents[1]
DATA_ROOT = Path(os.environ.get("STARGAN_DATA", PROJECT_ROOT.parent / "shared" / "data"))

# Tests share two cores with everything else; one thread avoids oversubscription stalls.
torch.set_num_threads(1)


def data_path(*parts: str) -> Path:
    """A path under the shared data folder, or a skip naming what is missing and how to point at it."""
    path = DATA_ROOT.joinpath(*parts)
    if not path.exists():
        pytest.skip(f"real data not found at {path}; set STARGAN_DATA to the folder holding celeba_hq_128 etc.")
    return path


@pytest.fixture
def celeba_hq() -> Path:
    return data_path("celeba_hq_128")
