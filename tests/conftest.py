"""Shared fixtures: where the real data lives, and small helpers for tests."""

from __future__ import annotations

import contextlib
import os
import socket
import struct
import sys
import zlib
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from hub_server import HubServer

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


def free_port() -> int:
    """A free TCP port on 127.0.0.1, for a server a test starts."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


CHROMIUM = Path(os.environ.get("CHROMIUM", "/usr/bin/chromium"))
CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update",
                 "--disable-sync", "--no-first-run", "--disable-dev-shm-usage"]


@contextlib.contextmanager
def served_demo() -> Iterator[tuple[str, object]]:
    """The demo on the shipped weights, served on a free loopback port for a browser test: (url, the Blocks).
    Skips with the reason when the weights, Debian's Chromium or Playwright are missing."""
    from stargan.inference import DEFAULT_WEIGHTS

    if not (DEFAULT_WEIGHTS / "config.json").is_file():
        pytest.skip(f"the shipped model is not at {DEFAULT_WEIGHTS}: train one and copy its export folder there")
    if not CHROMIUM.is_file():
        pytest.skip(f"no Chromium at {CHROMIUM}: install the Debian package (apt-get install chromium) or set CHROMIUM")
    pytest.importorskip("playwright.sync_api", reason="playwright (python) is not installed")
    sys.path.insert(0, str(PROJECT_ROOT / "demo"))
    import app as demo_app

    demo = demo_app.create(DEFAULT_WEIGHTS)
    port = free_port()
    demo.launch(server_name="127.0.0.1", server_port=port, prevent_thread_lock=True, quiet=True)
    try:
        yield f"http://127.0.0.1:{port}/", demo
    finally:
        demo.close()


def png_header(width: int, height: int) -> bytes:
    """A PNG whose header claims width x height (the pixel data is not there: nothing huge is allocated): a
    decompression bomb for the size checks."""
    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))
    ihdr = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + chunk(b"IDAT", zlib.compress(b"\0")) + chunk(b"IEND", b"")


@pytest.fixture
def celeba_hq() -> Path:
    return data_path("celeba_hq_128")


# Every 8th test image of each expression class keeps the test sets' class mix (the judge reads it within 0.02 of
# its accuracy on the whole sets) and aligns in about ten seconds.
EXPRESSION_SAMPLE_EVERY = 8


@pytest.fixture(scope="session")
def expression_test_roots(tmp_path_factory: pytest.TempPathFactory) -> list[Path]:
    """Aligned expression test folders, as `python -m stargan.prepare` makes them for the judges, from a sample
    of the shared expression sets read in place; made once per test run in a temporary folder."""
    from stargan.face import FaceDetector
    from stargan.prepare import prepare

    sources = [data_path(name) for name in ("expressions_posed", "expressions")]  # the judges' order
    out = tmp_path_factory.mktemp("prepared")
    detector = FaceDetector()
    roots = []
    for src in sources:
        prepare(src, out / f"{src.name}.soft", "celeba_hq_128", 128, detector=detector, splits=("test",),
                every=EXPRESSION_SAMPLE_EVERY)
        roots.append(out / f"{src.name}.soft" / "test")
    return roots


# ---- tiny generated training data (train.py tests) ----
ATTRS = ["Black_Hair", "Blond_Hair", "Male"]


def _image(path: Path, seed: int, gray: bool = False) -> None:
    rng = np.random.default_rng(seed)
    pixels = rng.integers(0, 255, (40, 40) if gray else (40, 40, 3), dtype=np.uint8)
    Image.fromarray(pixels).save(path)


@pytest.fixture
def celeba_dir(tmp_path: Path) -> Path:
    root = tmp_path / "celeba"
    (root / "images").mkdir(parents=True)
    rows = []
    for i in range(20):
        _image(root / "images" / f"{i}.jpg", i)
        values = ["1" if (i >> b) & 1 else "-1" for b in range(3)]
        rows.append(f"{i}.jpg " + " ".join(values))
    (root / "list_attr_celeba.txt").write_text(f"{len(rows)}\n{' '.join(ATTRS)}\n" + "\n".join(rows) + "\n")
    return root


@pytest.fixture
def expression_dir(tmp_path: Path) -> Path:
    root = tmp_path / "expr" / "train"
    for c, name in enumerate(["happy", "sad", "surprised"]):  # some classes missing on purpose
        (root / name).mkdir(parents=True)
        for i in range(5):
            _image(root / name / f"{i}.jpg", 100 * c + i, gray=True)
    return root


@pytest.fixture
def hub(tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    """A local Hub on 127.0.0.1 and a fresh, empty cache.

    huggingface_hub reads its environment once, at import, into ``huggingface_hub.constants``: the variables are
    set for subprocesses and the constants patched for this process.
    """
    from huggingface_hub import constants

    with HubServer() as server:
        cache = tmp_path / "hf_home" / "hub"
        env = {"HF_ENDPOINT": server.url, "HF_HOME": str(tmp_path / "hf_home"), "HF_HUB_CACHE": str(cache),
               "HF_HUB_DISABLE_XET": "1", "HF_HUB_DISABLE_TELEMETRY": "1", "HF_HUB_DISABLE_PROGRESS_BARS": "1"}
        for k, v in env.items():
            monkeypatch.setenv(k, v)
        monkeypatch.delenv("HF_HUB_OFFLINE", raising=False)
        monkeypatch.delenv("HF_TOKEN", raising=False)
        for name, value in {"ENDPOINT": server.url, "HF_HUB_CACHE": str(cache), "HF_HUB_DISABLE_XET": True,
                            "HF_HUB_OFFLINE": False,
                            "HUGGINGFACE_CO_URL_TEMPLATE": server.url + "/{repo_id}/resolve/{revision}/{filename}",
                            "HF_TOKEN_PATH": str(tmp_path / "hf_home" / "token")}.items():
            monkeypatch.setattr(constants, name, value)
        server.cache = cache
        yield server

