"""Weights through the Hub, end to end: the real huggingface_hub client against tests/hub_server.py."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from stargan.weights import WeightsError, load_weights, push_to_hub, save_weights

from hub_server import HubServer
from test_weights import g_output, random_models, tiny_config

ROOT = Path(__file__).resolve().parents[1]


def tensors_equal(a: torch.nn.Module, b: torch.nn.Module) -> bool:
    sa, sb = a.state_dict(), b.state_dict()
    return sa.keys() == sb.keys() and all(torch.equal(sa[k], sb[k]) for k in sa)


def test_push_then_load_from_a_fresh_cache(hub: HubServer, tmp_path: Path) -> None:
    config = tiny_config()
    g, d = random_models(config)
    folder = save_weights(tmp_path / "w", g, config, d, provenance={"steps": 10})
    (folder / "notes.txt").write_text("not part of a weights folder")

    commit = push_to_hub(folder, "someone/tiny")
    assert commit.startswith(f"{hub.url}/someone/tiny/commit/") and commit.endswith(commit.oid)
    pushed = hub.repos["someone/tiny"].resolve("main").files
    assert sorted(pushed) == ["README.md", "config.json", "discriminator.safetensors", "model.safetensors"]
    assert pushed["model.safetensors"] == (folder / "model.safetensors").read_bytes()
    assert not hub.cache.exists()  # nothing downloaded yet

    m = load_weights("someone/tiny")
    assert m.revision == commit.oid and m.path.is_relative_to(hub.cache)
    assert m.config == config and m.provenance == {"steps": 10}
    assert tensors_equal(g, m.generator) and tensors_equal(d, m.discriminator)
    assert torch.equal(g_output(g, config), g_output(m.generator, config))
    # pushing the same folder again is a no-op commit on the Hub side, and still fine
    assert push_to_hub(folder, "someone/tiny").oid == commit.oid


def test_pinned_revision_loads_that_revision(hub: HubServer, tmp_path: Path) -> None:
    config = tiny_config()
    g1, _ = random_models(config, seed=1)
    g2, _ = random_models(config, seed=2)
    first = push_to_hub(save_weights(tmp_path / "v1", g1, config), "someone/tiny")
    second = push_to_hub(save_weights(tmp_path / "v2", g2, config), "someone/tiny")
    assert first.oid != second.oid

    assert tensors_equal(g1, load_weights(f"someone/tiny@{first.oid}").generator)
    assert tensors_equal(g2, load_weights("someone/tiny").generator)
    assert load_weights("someone/tiny@main").revision == second.oid
    with pytest.raises(WeightsError, match="has no revision 'nope'"):
        load_weights("someone/tiny@nope")


def test_push_a_loaded_model_to_a_branch(hub: HubServer, tmp_path: Path) -> None:
    config = tiny_config(joint=True)
    g, d = random_models(config)
    main = push_to_hub(save_weights(tmp_path / "w", g, config, d), "someone/joint")
    m = load_weights(tmp_path / "w")
    with torch.no_grad():  # an in-memory change is what gets pushed, not the folder it came from
        next(m.generator.parameters()).add_(1.0)
    branch = push_to_hub(m, "someone/joint", revision="finetuned", commit_message="fine-tune")
    assert tensors_equal(m.generator, load_weights("someone/joint@finetuned").generator)
    assert load_weights("someone/joint").revision == main.oid
    assert load_weights("someone/joint@finetuned").revision == branch.oid


def test_offline_mode_loads_from_the_cache(hub: HubServer, tmp_path: Path) -> None:
    config = tiny_config()
    g, _ = random_models(config)
    push_to_hub(save_weights(tmp_path / "w", g, config), "someone/tiny")
    load_weights("someone/tiny")  # fills the cache
    expected = g_output(g, config)
    torch.save(expected, tmp_path / "expected.pt")
    before = len(hub.requests)

    # A real HF_HUB_OFFLINE=1 process: huggingface_hub reads it at import time.
    script = (
        "import sys, torch\n"
        "sys.path.insert(0, sys.argv[1])\n"
        "from test_weights import g_output\n"
        "from stargan.weights import load_weights\n"
        "m = load_weights('someone/tiny')\n"
        "assert torch.equal(g_output(m.generator, m.config), torch.load(sys.argv[2]))\n"
        "print('offline ok', m.revision)\n"
    )
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "PYTHONPATH": str(ROOT)}
    result = subprocess.run([sys.executable, "-c", script, str(ROOT / "tests"), str(tmp_path / "expected.pt")],
                            env=env, capture_output=True, text=True, timeout=300, check=False)
    assert result.returncode == 0, result.stderr
    assert "offline ok" in result.stdout
    assert hub.requests[before:] == []  # not a single request reached the server


def test_offline_without_cache_says_so(hub: HubServer, monkeypatch: pytest.MonkeyPatch) -> None:
    from huggingface_hub import constants

    monkeypatch.setattr(constants, "HF_HUB_OFFLINE", True)
    with pytest.raises(WeightsError, match=r"offline mode is on \(HF_HUB_OFFLINE=1\) and someone/tiny is not in "
                                           r"the local cache"):
        load_weights("someone/tiny")
    assert hub.requests == []


def test_unreachable_hub_without_cache_says_so(hub: HubServer, monkeypatch: pytest.MonkeyPatch) -> None:
    from huggingface_hub import constants

    dead = "http://127.0.0.1:9"  # the discard port: nothing listens there
    monkeypatch.setattr(constants, "ENDPOINT", dead)
    monkeypatch.setattr(constants, "HUGGINGFACE_CO_URL_TEMPLATE", dead + "/{repo_id}/resolve/{revision}/{filename}")
    with pytest.raises(WeightsError, match="could not reach the Hub at http://127.0.0.1:9 .* not in the local cache"):
        load_weights("someone/tiny")


def test_missing_repo(hub: HubServer) -> None:
    with pytest.raises(WeightsError, match=r"no model repo 'someone/missing' on http://127\.0\.0\.1:\d+ .*check the "
                                           r"name"):
        load_weights("someone/missing")


def test_push_refuses_a_broken_folder(hub: HubServer, tmp_path: Path) -> None:
    config = tiny_config()
    g, _ = random_models(config)
    folder = save_weights(tmp_path / "w", g, config)
    (folder / "config.json").unlink()
    with pytest.raises(WeightsError, match=r"config\.json: missing"):
        push_to_hub(folder, "someone/tiny")
    assert "someone/tiny" not in hub.repos
