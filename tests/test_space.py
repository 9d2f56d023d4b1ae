"""The Hugging Face Space: README front matter, requirements, and `python -m stargan.space push` end to end against
tests/hub_server.py, down to the uploaded copy serving an edit offline."""

from __future__ import annotations

import ast
import json
import os
import re
import shutil
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest

from stargan.inference import DEFAULT_WEIGHTS
from stargan.space import SpaceError, check_space_card, main, space_files

from conftest import free_port
from hub_server import HubServer

ROOT = Path(__file__).resolve().parents[1]
ASTRONAUT = ROOT / "demo" / "examples" / "astronaut.png"
WEIGHTS_FILES = ["README.md", "config.json", "discriminator.safetensors", "model.safetensors", "sample_grid.png"]


def expected_files() -> list[str]:
    """What a Space needs, listed independently of stargan.space's patterns."""
    return sorted(["README.md", "requirements.txt", "demo/app.py", "demo/examples/astronaut.png", "docs/live.png",
                   *(f"stargan/{p.name}" for p in (ROOT / "stargan").glob("*.py")),
                   *(f"weights/stargan-studio/{name}" for name in WEIGHTS_FILES)])


# ---- the README's front matter, as the Hub reads it ----------------------------------------------------------
def test_readme_is_a_gradio_space_card() -> None:
    from huggingface_hub import SpaceCard
    from packaging.requirements import Requirement

    data = check_space_card(ROOT / "README.md", space_files())
    assert isinstance(SpaceCard.load(ROOT / "README.md").data, type(data))
    assert data.sdk == "gradio" and (ROOT / data.app_file).is_file() and data.python_version == "3.11"
    # the Space installs the Gradio its front matter names: it must satisfy requirements.txt
    gradio = next(Requirement(line.split("#")[0]) for line in (ROOT / "requirements.txt").read_text().splitlines()
                  if line.startswith("gradio"))
    assert gradio.specifier.contains(data.sdk_version), (data.sdk_version, gradio)
    # the Spaces configuration reference's limits
    assert data.title and len(data.short_description) <= 60
    colours = {"red", "yellow", "green", "blue", "indigo", "purple", "pink", "gray"}
    assert data.colorFrom in colours and data.colorTo in colours
    # the two set-up commands stay exactly as they are
    readme = (ROOT / "README.md").read_text()
    assert "pip install -r requirements.txt && python demo/app.py\n" in readme
    assert "pip install -r requirements-dev.txt && python -m pytest\n" in readme


@pytest.mark.parametrize("front, error", [
    ("", "no front matter"),
    ("---\ntitle: x\nsdk: [unclosed\n---\n", "does not parse as a Space card"),
    ("---\ntitle: x\nsdk: docker\napp_file: demo/app.py\n---\n", "sdk: 'docker'"),
    ("---\ntitle: x\nsdk: gradio\napp_file: app.py\n---\n", "app_file is 'app.py'"),
])
def test_a_bad_space_card_is_refused(tmp_path: Path, front: str, error: str) -> None:
    readme = tmp_path / "README.md"
    readme.write_text(front + "# StarGAN Studio\n")
    with pytest.raises(SpaceError, match=re.escape(error)):
        check_space_card(readme, space_files())


# ---- requirements.txt ----------------------------------------------------------------------------------------
def test_requirements_name_every_third_party_import() -> None:
    """Every module the library, the demo and the trainer import (at any depth: lazy imports too) is provided by a
    distribution that requirements.txt names."""
    provided_by = {"PIL": "pillow", "cv2": "opencv-", "facenet_pytorch": "facenet-pytorch",
                   "huggingface_hub": "huggingface-hub", "torch.utils.tensorboard": "tensorboard"}
    names = [re.split(r"[<>=!~;\[ #]", line.strip(), maxsplit=1)[0].lower().replace("_", "-")
             for line in (ROOT / "requirements.txt").read_text().splitlines() if line.strip()[:1].isalnum()]
    first_party = {"stargan", "app"}
    missing = {}
    for path in [*(ROOT / "stargan").glob("*.py"), ROOT / "demo" / "app.py", ROOT / "train.py"]:
        for node in ast.walk(ast.parse(path.read_text())):
            modules = ([a.name for a in node.names] if isinstance(node, ast.Import) else
                       [node.module] if isinstance(node, ast.ImportFrom) and node.level == 0 and node.module else [])
            for module in modules:
                top = module.split(".")[0]
                if top in sys.stdlib_module_names or top in first_party:
                    continue
                wanted = next((v for k, v in provided_by.items() if module == k or module.startswith(k + ".")),
                              provided_by.get(top, top.replace("_", "-")))
                if not any(n.startswith(wanted) if wanted.endswith("-") else n == wanted for n in names):
                    missing[module] = f"{path.relative_to(ROOT)} (wanted {wanted!r})"
    assert not missing, f"requirements.txt ({names}) lacks what these imports need: {missing}"


# ---- the push ---------------------------------------------------------------------------------------------------
def test_dry_run_lists_exactly_what_the_space_needs(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["push", "someone/studio", "--dry-run"]) == 0
    out = capsys.readouterr().out.splitlines()
    listed = [line.split()[-1] for line in out[:-1]]
    assert listed == expected_files()
    assert not any(p.startswith(("tests/", "benchmarks/", "runs/")) or p == "train.py" for p in listed)
    assert [p for p in listed if p.startswith("docs/")] == ["docs/live.png"]  # the README's picture, nothing more
    total = sum((ROOT / p).stat().st_size for p in listed)
    assert out[-1].startswith(f"{len(listed)} files, {total / 1e6:.1f} MB would be uploaded"), out[-1]


def test_an_incomplete_tree_is_not_pushed(tmp_path: Path) -> None:
    for p in ("README.md", "requirements.txt", "demo/app.py", "stargan/space.py"):
        (tmp_path / p).parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(ROOT / p, tmp_path / p)
    with pytest.raises(SpaceError, match=r"demo/examples/\*\.png: missing, and the Space needs it"):
        space_files(tmp_path)


def test_push_creates_the_space_updates_it_and_stages_a_branch(hub: HubServer) -> None:
    assert main(["push", "someone/studio", "--private", "--endpoint", hub.url]) == 0
    space = hub.repos["spaces/someone/studio"]
    assert "someone/studio" not in hub.repos  # a Space, not a model repo of the same name
    assert space.kind == "space" and space.sdk == "gradio" and space.private
    files = space.resolve("main").files
    assert sorted(files) == expected_files()
    assert files["weights/stargan-studio/model.safetensors"] == (DEFAULT_WEIGHTS / "model.safetensors").read_bytes()
    assert files["README.md"] == (ROOT / "README.md").read_bytes()

    # Someone's extra file at the top is kept; a module the library no longer has is removed on the next push.
    from huggingface_hub import HfApi

    api = HfApi(endpoint=hub.url)
    for name in ("stargan/removed_module.py", "NOTES.md"):
        api.upload_file(path_or_fileobj=b"old", path_in_repo=name, repo_id="someone/studio", repo_type="space")
    main_before = space.branches["main"]
    assert main(["push", "someone/studio", "--revision", "staging", "--endpoint", hub.url]) == 0
    assert space.branches["main"] == main_before  # a branch stages the change; the Space runs main
    staged = space.resolve("staging").files
    assert "stargan/removed_module.py" not in staged and "NOTES.md" in staged
    assert sorted(set(staged) - {"NOTES.md"}) == expected_files()


def test_push_to_an_unreachable_hub_says_so(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["push", "someone/studio", "--endpoint", "http://127.0.0.1:9"]) == 1  # nothing listens there
    assert "could not reach the Hub (http://127.0.0.1:9)" in capsys.readouterr().err


@pytest.mark.slow
def test_the_pushed_space_serves_an_edit_offline(hub: HubServer, tmp_path: Path,
                                                 monkeypatch: pytest.MonkeyPatch) -> None:
    """Push, download the Space's files into a fresh folder, start them the way a Space does (python demo/app.py,
    SPACE_ID set), offline, and edit a photo through the page's API: the result is the library's own edit."""
    import numpy as np
    from gradio_client import Client, handle_file
    from gradio_client.exceptions import AppError
    from huggingface_hub import snapshot_download
    from PIL import Image

    from stargan.inference import Editor

    assert main(["push", "someone/studio", "--endpoint", hub.url]) == 0
    space = Path(snapshot_download("someone/studio", repo_type="space", local_dir=tmp_path / "space"))
    assert sorted(p.relative_to(space).as_posix() for p in space.rglob("*")
                  if p.is_file() and ".cache" not in p.parts) == expected_files()
    requests_before = len(hub.requests)

    port = free_port()
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
    env |= {"SPACE_ID": "someone/studio", "HF_HUB_OFFLINE": "1", "GRADIO_SERVER_NAME": "127.0.0.1",
            "GRADIO_SERVER_PORT": str(port), "GRADIO_ANALYTICS_ENABLED": "False", "STARGAN_ALLOW_MODELS": "someone/extra"}
    log = tmp_path / "space.log"
    with log.open("w") as out:
        proc = subprocess.Popen([sys.executable, "demo/app.py"], cwd=space, env=env, stdout=out,
                                stderr=subprocess.STDOUT)
    try:
        url = f"http://127.0.0.1:{port}/"
        deadline = time.monotonic() + 420
        while True:
            assert proc.poll() is None, f"the Space's app exited ({proc.returncode}):\n{log.read_text()[-4000:]}"
            assert time.monotonic() < deadline, f"the Space's app did not start:\n{log.read_text()[-4000:]}"
            try:
                config = urllib.request.urlopen(url + "config", timeout=5).read().decode()
                break
            except OSError:
                time.sleep(1)
        # public mode, detected from SPACE_ID: only the shipped model and the owner's list, no server path anywhere
        assert str(space) not in config and str(ROOT) not in config
        box = next(c for c in json.loads(config)["components"] if c["props"].get("elem_id") == "model-box")
        assert box["type"] == "dropdown" and box["props"]["value"] == "weights/stargan-studio"
        assert [c[0] for c in box["props"]["choices"]] == ["weights/stargan-studio", "someone/extra"]

        monkeypatch.setenv("GRADIO_ANALYTICS_ENABLED", "False")  # the client's telemetry would go to the Hub
        client = Client(url, verbose=False, analytics_enabled=False)
        photo, face = client.predict(handle_file(str(ASTRONAUT)), json.dumps({"Blond_Hair": 1.0}), "0", "delta",
                                     api_name="/edit")
        with pytest.raises(AppError, match="not in the list of choices"):
            client.predict(str(space / "weights" / "stargan-studio"), None, api_name="/load_model")
    finally:
        proc.terminate()
        proc.wait(timeout=60)
    output = log.read_text()
    # the copy ran: the library found its weights next to itself, in the downloaded folder
    assert f"editor: {space / 'weights' / 'stargan-studio'} on cpu" in output, output[-4000:]
    assert hub.requests[requests_before:] == []  # offline: not a single request reached the Hub

    # the same number format as the app chose (auto precision times bf16 against fp32, so it depends on the load)
    precision = re.search(rf"editor: {re.escape(str(space / 'weights' / 'stargan-studio'))} on cpu, (\w+)",
                          output).group(1)
    editor = Editor(DEFAULT_WEIGHTS, precision=precision)
    expected = editor.edit(editor.prepare(ASTRONAUT), {"Blond_Hair": 1.0})
    with Image.open(photo) as im:
        got = np.asarray(im.convert("RGB")).astype(int)
    assert got.shape == expected.photo.shape and np.abs(got - expected.photo).max() <= 1
    assert np.abs(got - np.asarray(Image.open(ASTRONAUT).convert("RGB"))).mean() > 0.1  # and it is an edit
