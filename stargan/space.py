"""Deploy the demo as a Hugging Face Space, in one command.

    python -m stargan.space push OWNER/NAME [--private] [--revision BRANCH] [--dry-run]

Uploads exactly what the Space runs (``SPACE_FILES``): the app and its example photo, the library, the shipped
weights folder, requirements.txt and README.md, whose front matter configures the Space (sdk, app_file, ...).
Nothing else: no tests, benchmarks, training runs or data. On the Space the page runs in public mode (it sees
``SPACE_ID``): visitors cannot choose other models unless the owner lists them (see ``demo/app.py``).
"""

from __future__ import annotations

import argparse
import logging
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING

from .inference import DEFAULT_WEIGHTS
from .weights import (
    CARD_FILE,
    CONFIG_FILE,
    DISCRIMINATOR_FILE,
    GENERATOR_FILE,
    SAMPLE_GRID_FILE,
    WeightsError,
    load_weights,
)

if TYPE_CHECKING:
    from huggingface_hub import CommitInfo, SpaceCardData

logger = logging.getLogger(__name__)

ROOT = Path(__file__).resolve().parents[1]
WEIGHTS = DEFAULT_WEIGHTS.relative_to(ROOT).as_posix()
# What the Space needs, as glob patterns relative to the project root; each must match at least one file.
SPACE_FILES = ("README.md", "requirements.txt", "demo/app.py", "demo/examples/*.png", "stargan/*.py",
               *(f"{WEIGHTS}/{name}" for name in (CONFIG_FILE, GENERATOR_FILE, DISCRIMINATOR_FILE, CARD_FILE)))
# Shown by the weights' model card and by the Space's own card (the README's live-mode picture) when present.
OPTIONAL_FILES = (f"{WEIGHTS}/{SAMPLE_GRID_FILE}", "docs/live.png")
# Folders the Space owns: a file there that this push does not upload (say a module since removed) is deleted.
MANAGED_FOLDERS = ("demo/", "stargan/", "weights/", "docs/")


class SpaceError(ValueError):
    """A project tree that would not run as a Space; the message says what is wrong and how to fix it."""


def space_files(root: str | Path = ROOT) -> list[str]:
    """The files to upload, as sorted posix paths relative to ``root``; raises SpaceError when one is missing."""
    root = Path(root)
    files: set[str] = set()
    for pattern in SPACE_FILES + OPTIONAL_FILES:
        found = {p.relative_to(root).as_posix() for p in root.glob(pattern) if p.is_file()}
        if not found and pattern not in OPTIONAL_FILES:
            raise SpaceError(f"{root / pattern}: missing, and the Space needs it; run from a complete checkout "
                             f"(git status / git checkout -- {pattern})")
        files |= found
    return sorted(files)


def check_space_card(readme: str | Path, files: Sequence[str] | None = None) -> SpaceCardData:
    """Parse README.md's front matter with huggingface_hub (as the Hub does) and check that it describes a Gradio
    Space whose app_file is uploaded. Returns the ``SpaceCardData``."""
    from huggingface_hub import SpaceCard

    readme = Path(readme)
    fix = ("restore the YAML block between the --- lines at the top of README.md (see the Spaces configuration "
           "reference, https://huggingface.co/docs/hub/spaces-config-reference)")
    try:
        data = SpaceCard.load(readme).data
    except Exception as e:  # noqa: BLE001 - an unreadable file, or YAML that does not parse (pyyaml's own errors)
        raise SpaceError(f"{readme}: its front matter does not parse as a Space card ({e}); {fix}") from e
    if not data.to_dict():
        raise SpaceError(f"{readme}: no front matter, so the Hub would not know how to run the Space; {fix}")
    if data.sdk != "gradio":
        raise SpaceError(f"{readme}: front matter says sdk: {data.sdk!r}; this Space needs sdk: gradio")
    if not data.app_file or (files is not None and data.app_file not in files):
        raise SpaceError(f"{readme}: front matter app_file is {data.app_file!r}, which is not among the uploaded "
                         "files; set app_file: demo/app.py")
    return data


def checked_space_files(root: str | Path = ROOT) -> list[str]:
    """:func:`space_files`, once the README's front matter and the shipped weights are checked: a Space that could
    not start is never pushed. Raises SpaceError or WeightsError."""
    files = space_files(root)
    check_space_card(Path(root) / "README.md", files)
    load_weights(Path(root) / WEIGHTS)
    return files


def push_space(repo_id: str, root: str | Path = ROOT, private: bool = False, revision: str | None = None,
               token: str | None = None, endpoint: str | None = None,
               commit_message: str = "Deploy StarGAN Studio") -> CommitInfo:
    """Create the Gradio Space ``repo_id`` if needed and upload :func:`checked_space_files` in one commit.

    ``private`` applies when the Space is created; ``revision`` names a branch (created from main if
    missing). Returns the ``huggingface_hub.CommitInfo``.
    """
    from huggingface_hub import CommitOperationAdd, CommitOperationDelete, HfApi

    root = Path(root)
    files = checked_space_files(root)
    api = HfApi(endpoint=endpoint, token=token)
    url = api.create_repo(repo_id, repo_type="space", space_sdk="gradio", private=private or None, exist_ok=True)
    if revision is not None and revision != "main":
        api.create_branch(repo_id, repo_type="space", branch=revision, exist_ok=True)
    present = api.list_repo_files(repo_id, repo_type="space", revision=revision)
    stale = [p for p in present if p.startswith(MANAGED_FOLDERS) and p not in files]
    operations = [CommitOperationAdd(path_in_repo=p, path_or_fileobj=root / p) for p in files]
    operations += [CommitOperationDelete(path_in_repo=p) for p in stale]
    info = api.create_commit(repo_id, operations, repo_type="space", revision=revision,
                             commit_message=commit_message)
    logger.info("pushed %d files to %s (%d stale removed): %s", len(files), url, len(stale), info.commit_url)
    return info


def _size(n: int) -> str:
    return f"{n / 1e6:.1f} MB" if n >= 1e5 else f"{n / 1e3:.1f} kB"


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m stargan.space", description=__doc__.splitlines()[0])
    commands = parser.add_subparsers(dest="command", required=True)
    push = commands.add_parser(
        "push", help="create (or update) a Gradio Space with the demo, the library and the shipped weights",
        description="Create the Gradio Space OWNER/NAME if needed and upload exactly what it runs: the app "
                    f"(demo/), the library (stargan/), the shipped weights ({WEIGHTS}/), requirements.txt and "
                    "README.md (its front matter configures the Space). Log in first (`hf auth login`) or pass "
                    "--token. See the files with --dry-run.")
    push.add_argument("repo_id", metavar="OWNER/NAME", help="the Space to create or update, e.g. you/stargan-studio")
    push.add_argument("--private", action="store_true",
                      help="create the Space private (only you and your organisation see it); applies when the "
                           "Space is created: change an existing Space's visibility in its settings")
    push.add_argument("--revision", metavar="BRANCH",
                      help="upload to this branch instead of main (created from main if missing); a Space runs "
                           "main, so use a branch to stage a change")
    push.add_argument("--token", help="a Hugging Face token with write access (default: the one saved by "
                                      "`hf auth login`, or $HF_TOKEN)")
    push.add_argument("--endpoint", help="the Hub's address (default: $HF_ENDPOINT or https://huggingface.co); "
                                         "change it for a self-hosted or mirrored Hub")
    push.add_argument("--message", default="Deploy StarGAN Studio", help="the commit message (default: %(default)s)")
    push.add_argument("--dry-run", action="store_true",
                      help="list the files that would be uploaded and their total size, check them, upload nothing")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(message)s")
    # errors.HTTPError is the base of the client's HTTP library's errors (httpx2 in huggingface_hub 2.x, requests
    # before), so it also covers a connection that fails before any answer.
    from huggingface_hub.errors import HfHubHTTPError, HFValidationError, HTTPError
    from huggingface_hub.utils import validate_repo_id

    try:
        if "/" not in args.repo_id:
            raise HFValidationError(f"{args.repo_id!r} names no owner")
        validate_repo_id(args.repo_id)
    except HFValidationError as e:
        parser.error(f"{args.repo_id!r} is not a Space id of the form OWNER/NAME (e.g. you/stargan-studio): {e}")
    try:
        if args.dry_run:
            files = checked_space_files()
            sizes = {p: (ROOT / p).stat().st_size for p in files}
            for p, n in sizes.items():
                print(f"{_size(n):>10}  {p}")
            print(f"{len(files)} files, {_size(sum(sizes.values()))} would be uploaded to Space {args.repo_id} "
                  "(dry run: nothing was uploaded)")
            return 0
        info = push_space(args.repo_id, private=args.private, revision=args.revision, token=args.token,
                          endpoint=args.endpoint, commit_message=args.message)
    except (SpaceError, WeightsError) as e:
        print(f"error: {e}", file=sys.stderr)
        return 1
    except HfHubHTTPError as e:
        print(f"error: the Hub refused the push to Space {args.repo_id}: {e}\nCheck that you are logged in "
              "(`hf auth login`, or --token / HF_TOKEN) with a token that has write access to its owner.",
              file=sys.stderr)
        return 1
    except (HTTPError, OSError) as e:
        print(f"error: could not reach the Hub ({args.endpoint or 'HF_ENDPOINT / huggingface.co'}): {e}; check the "
              "network or --endpoint", file=sys.stderr)
        return 1
    print(f"pushed to Space {args.repo_id}: {info.commit_url}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
