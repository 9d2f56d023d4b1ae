"""gpu/stage.sh: a call to a lent GPU gets the tree without the large tracked files, with the init folder or
the data pack in gpu_carry/, and restore gives back the repository exactly as git had it."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
pytestmark = pytest.mark.skipif(shutil.which("git") is None, reason="git is not installed")


def _git(repo: Path, *args: str) -> str:
    return subprocess.run(["git", *args], cwd=repo, check=True, capture_output=True, text=True).stdout


def _stage(repo: Path, *args: str) -> subprocess.CompletedProcess:
    return subprocess.run(["bash", "gpu/stage.sh", *args], cwd=repo, capture_output=True, text=True)


@pytest.fixture
def repo(tmp_path: Path) -> Path:
    repo = tmp_path / "repo"
    (repo / "gpu").mkdir(parents=True)
    shutil.copy(ROOT / "gpu" / "stage.sh", repo / "gpu" / "stage.sh")
    shutil.copy(ROOT / ".gitignore", repo / ".gitignore")
    files = {"weights/stargan-studio-128/config.json": "{}", "weights/stargan-studio-128/model.safetensors": "G",
             "weights/stargan-studio-128/README.md": "card", "benchmarks/judges/attributes.safetensors": "J",
             "benchmarks/curve.png": "png", "stargan/trainer.py": "code", "docs/sheet.jpg": "jpg"}
    for name, text in files.items():
        (repo / name).parent.mkdir(parents=True, exist_ok=True)
        (repo / name).write_text(text)
    _git(repo, "init", "-q")
    _git(repo, "add", ".")
    _git(repo, "-c", "user.name=t", "-c", "user.email=t@t", "commit", "-qm", "init")
    (repo / ".git" / "info").mkdir(exist_ok=True)
    (repo / ".git" / "info" / "exclude").write_text("my-own-pattern\n")
    (repo / "gpu_carry").mkdir()
    (repo / "gpu_carry" / "gpu_pack.tgz").write_text("pack")
    return repo


def test_each_call_gets_its_carry_without_the_large_files_and_restore_puts_everything_back(repo: Path) -> None:
    assert _stage(repo, "init").returncode == 0
    assert sorted(p.name for p in (repo / "gpu_carry" / "init").iterdir()) == ["config.json", "model.safetensors"]
    assert not (repo / "gpu_carry" / "gpu_pack.tgz").exists()
    assert _git(repo, "ls-files").split() == [".gitignore", "gpu/stage.sh", "stargan/trainer.py"]
    untracked = [line for line in _git(repo, "status", "--porcelain", "--untracked-files=all").splitlines()
                 if line.startswith("??")]
    assert untracked == []  # the files out of the index do not travel as untracked files either

    assert _stage(repo, "pack").returncode == 0
    assert sorted(p.name for p in (repo / "gpu_carry").iterdir()) == ["gpu_pack.tgz"]
    assert _git(repo, "ls-files").split() == [".gitignore", "gpu/stage.sh", "stargan/trainer.py"]

    assert _stage(repo, "restore").returncode == 0
    assert _git(repo, "status", "--porcelain", "--untracked-files=all") == ""
    assert "weights/stargan-studio-128/model.safetensors" in _git(repo, "ls-files")
    assert (repo / ".git" / "info" / "exclude").read_text() == "my-own-pattern\n"


def test_clear_errors(repo: Path) -> None:
    missing = _stage(repo, "init", "weights/nothing-here")
    assert missing.returncode == 2 and "no weights folder" in missing.stderr
    (repo / "gpu_carry" / "gpu_pack.tgz").unlink()
    no_pack = _stage(repo, "pack")
    assert no_pack.returncode == 2 and "pack_data.py" in no_pack.stderr
    assert _stage(repo, "sideways").returncode == 2
    assert _stage(repo, "restore").returncode == 0
