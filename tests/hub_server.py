"""A small in-memory stand-in for the Hugging Face Hub's HTTP API, for tests only.

It speaks just the endpoints that ``huggingface_hub`` 2.x calls for ``create_repo``, ``create_branch``,
``upload_folder`` / ``create_commit`` (regular base64 uploads, no LFS), ``list_repo_files`` and
``snapshot_download`` / ``hf_hub_download``, for model repos and Space repos (``{kind}`` is ``models`` or
``spaces``; a Space's files live under ``/spaces/{repo}``, as on the Hub):

    POST /api/repos/create                                  create a model or Space repo (409 if it exists)
    POST /api/validate-yaml                                 README front matter check (always fine)
    POST /api/{kind}/{repo}/branch/{branch}                 create a branch from main
    POST /api/{kind}/{repo}/preupload/{rev}                 every file "regular", with its current oid
    POST /api/{kind}/{repo}/commit/{rev}                    ndjson commit: header, file, deletedFile
    GET  /api/{kind}/{repo}[/revision/{rev}]                repo info with the revision's sha
    GET  /api/{kind}/{repo}/tree/{rev}[/{path}]             file listing
    HEAD/GET [/spaces]/{repo}/resolve/{rev}/{path}          file bytes with ETag and X-Repo-Commit

``HubServer.repos`` is keyed like the Hub's web addresses: ``owner/name`` for a model, ``spaces/owner/name`` for
a Space. Anything else gets a 404 (the client's optional look-ups, such as /api/agent-harnesses, tolerate that).
Errors carry the ``X-Error-Code`` header the client maps to its exceptions (RepoNotFound, RevisionNotFound,
EntryNotFound). Every request is logged in ``HubServer.requests`` so tests can assert that none was made.
"""

from __future__ import annotations

import base64
import hashlib
import json
import re
import threading
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Self
from urllib.parse import unquote, urlsplit

REPO = r"(?P<repo>[^/]+/[^/]+)"
KIND = r"(?P<kind>models|spaces)"
ROUTES = [
    ("POST", re.compile(r"^/api/repos/create$"), "create_repo"),
    ("POST", re.compile(r"^/api/validate-yaml$"), "validate_yaml"),
    ("POST", re.compile(rf"^/api/{KIND}/{REPO}/branch/(?P<rev>[^/]+)$"), "create_branch"),
    ("POST", re.compile(rf"^/api/{KIND}/{REPO}/preupload/(?P<rev>[^/]+)$"), "preupload"),
    ("POST", re.compile(rf"^/api/{KIND}/{REPO}/commit/(?P<rev>[^/]+)$"), "commit"),
    ("GET", re.compile(rf"^/api/{KIND}/{REPO}(?:/revision/(?P<rev>[^/]+))?$"), "repo_info"),
    ("GET", re.compile(rf"^/api/{KIND}/{REPO}/tree/(?P<rev>[^/]+)(?:/(?P<path>.+))?$"), "tree"),
    ("HEAD", re.compile(rf"^/(?:(?P<kind>spaces)/)?{REPO}/resolve/(?P<rev>[^/]+)/(?P<path>.+)$"), "resolve"),
    ("GET", re.compile(rf"^/(?:(?P<kind>spaces)/)?{REPO}/resolve/(?P<rev>[^/]+)/(?P<path>.+)$"), "resolve"),
]


def git_blob_sha(data: bytes) -> str:
    """The oid git (and the Hub, for regular files) gives a file: sha1 of 'blob <size>\\0' + bytes."""
    return hashlib.sha1(b"blob %d\0" % len(data) + data).hexdigest()


@dataclass
class Commit:
    sha: str
    files: dict[str, bytes]


@dataclass
class Repo:
    kind: str = "model"  # or "space"
    sdk: str | None = None  # a Space's SDK, as create_repo sent it
    private: bool = False
    commits: dict[str, Commit] = field(default_factory=dict)
    branches: dict[str, str] = field(default_factory=dict)

    def resolve(self, rev: str) -> Commit | None:
        sha = self.branches.get(rev, rev)
        return self.commits.get(sha)


class HubError(Exception):
    def __init__(self, status: int, code: str, message: str, commit: str | None = None, **extra) -> None:
        super().__init__(message)
        self.status, self.code, self.message, self.commit, self.extra = status, code, message, commit, extra


class HubServer:
    """``with HubServer() as hub: hub.url``: serves on 127.0.0.1 on a free port in a background thread."""

    def __init__(self) -> None:
        self.repos: dict[str, Repo] = {}
        self.requests: list[tuple[str, str]] = []
        self.lock = threading.Lock()
        server = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"  # keep-alive, as the client expects

            def do_GET(self) -> None:
                server.handle(self, "GET")

            def do_HEAD(self) -> None:
                server.handle(self, "HEAD")

            def do_POST(self) -> None:
                server.handle(self, "POST")

            def log_message(self, *args) -> None:  # quiet: tests read HubServer.requests instead
                pass

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.httpd.daemon_threads = True
        self.url = f"http://127.0.0.1:{self.httpd.server_address[1]}"
        self.thread = threading.Thread(target=self.httpd.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)

    def __enter__(self) -> Self:
        self.thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()

    # ---- plumbing ----------------------------------------------------------------------------------------
    def handle(self, h: BaseHTTPRequestHandler, method: str) -> None:
        url = urlsplit(h.path)
        length = int(h.headers.get("Content-Length") or 0)
        body = h.rfile.read(length) if length else b""
        with self.lock:
            self.requests.append((method, url.path))
            try:
                for verb, pattern, name in ROUTES:
                    m = pattern.match(url.path)
                    if verb == method and m:
                        args = {k: unquote(v) for k, v in m.groupdict().items() if v is not None}
                        if args.pop("kind", "models") == "spaces":
                            args["repo"] = f"spaces/{args['repo']}"
                        status, headers, payload = getattr(self, name)(body=body, **args)
                        break
                else:
                    raise HubError(404, "", f"test hub server: no route for {method} {url.path}")
            except HubError as e:
                status, payload = e.status, json.dumps({"error": e.message, **e.extra}).encode()
                headers = {"Content-Type": "application/json", "X-Error-Message": e.message}
                if e.code:
                    headers["X-Error-Code"] = e.code
                if e.commit:
                    headers["X-Repo-Commit"] = e.commit
        if isinstance(payload, (dict, list)):
            payload = json.dumps(payload).encode()
            headers.setdefault("Content-Type", "application/json")
        h.send_response(status)
        for k, v in headers.items():
            h.send_header(k, v)
        h.send_header("Content-Length", str(len(payload)))
        h.end_headers()
        if method != "HEAD":
            h.wfile.write(payload)

    def _repo(self, repo: str) -> Repo:
        if repo not in self.repos:
            raise HubError(404, "RepoNotFound", f"Repository {repo} not found")
        return self.repos[repo]

    def _commit(self, repo: str, rev: str | None) -> Commit:
        r = self._repo(repo)
        commit = r.resolve(rev or "main")
        if commit is None:
            raise HubError(404, "RevisionNotFound", f"Invalid rev id: {rev}")
        return commit

    def _new_commit(self, repo: Repo, branch: str, files: dict[str, bytes], message: str) -> Commit:
        parent = repo.branches.get(branch, "")
        sha = hashlib.sha1(json.dumps([parent, message, sorted((k, git_blob_sha(v)) for k, v in files.items())])
                           .encode() + str(len(repo.commits)).encode()).hexdigest()
        commit = Commit(sha, files)
        repo.commits[sha] = commit
        repo.branches[branch] = sha
        return commit

    # ---- endpoints -------------------------------------------------------------------------------------------
    def create_repo(self, body: bytes) -> tuple:
        data = json.loads(body)
        repo_id = f"{data['organization']}/{data['name']}" if data.get("organization") else f"user/{data['name']}"
        kind = data.get("type") or "model"
        if kind not in ("model", "space"):
            raise HubError(400, "", "test hub server: model and Space repos only")
        if kind == "space" and data.get("sdk") not in ("gradio", "docker", "static", "streamlit"):
            raise HubError(400, "", f"a Space needs an sdk (gradio, docker, static, streamlit), got {data.get('sdk')!r}")
        key = f"spaces/{repo_id}" if kind == "space" else repo_id
        if key in self.repos:
            # like the Hub, the conflict still names the repo's url (create_repo(exist_ok=True) reads it)
            raise HubError(409, "", f"You already created this {kind} repo", url=f"{self.url}/{key}")
        repo = self.repos[key] = Repo(kind, data.get("sdk"), data.get("visibility") == "private")
        self._new_commit(repo, "main", {}, "initial commit")
        return 200, {}, {"url": f"{self.url}/{key}", "name": repo_id}

    def validate_yaml(self, body: bytes) -> tuple:
        return 200, {}, {"errors": [], "warnings": []}

    def create_branch(self, repo: str, rev: str, body: bytes) -> tuple:
        r = self._repo(repo)
        if rev in r.branches:
            raise HubError(409, "", f"Branch {rev} already exists")
        start = (json.loads(body) if body else {}).get("startingPoint") or "main"
        r.branches[rev] = self._commit(repo, start).sha
        return 200, {}, {}

    def preupload(self, repo: str, rev: str, body: bytes) -> tuple:
        files = self._commit(repo, rev).files
        out = [{"path": f["path"], "uploadMode": "regular", "shouldIgnore": False,
                "oid": git_blob_sha(files[f["path"]]) if f["path"] in files else None}
               for f in json.loads(body)["files"]]
        return 200, {}, {"files": out}

    def commit(self, repo: str, rev: str, body: bytes) -> tuple:
        files = dict(self._commit(repo, rev).files)
        message = ""
        for line in body.decode().splitlines():
            item = json.loads(line)
            key, value = item["key"], item["value"]
            if key == "header":
                message = value["summary"]
            elif key == "file":
                files[value["path"]] = base64.b64decode(value["content"])
            elif key == "deletedFile":
                files.pop(value["path"], None)
            else:
                raise HubError(400, "", f"test hub server: commit operation {key!r} is not supported (keep files small)")
        commit = self._new_commit(self.repos[repo], rev, files, message)
        return 200, {}, {"commitUrl": f"{self.url}/{repo}/commit/{commit.sha}", "commitOid": commit.sha,
                         "pullRequestUrl": None}

    def repo_info(self, repo: str, body: bytes, rev: str | None = None) -> tuple:
        commit = self._commit(repo, rev)
        r = self.repos[repo]
        info = {"id": repo.removeprefix("spaces/"), "sha": commit.sha, "private": r.private,
                "siblings": [{"rfilename": p} for p in sorted(commit.files)]}
        return 200, {}, info | ({"sdk": r.sdk} if r.kind == "space" else {"modelId": repo})

    def tree(self, repo: str, rev: str, body: bytes, path: str | None = None) -> tuple:
        commit = self._commit(repo, rev)
        prefix = f"{path.rstrip('/')}/" if path else ""
        entries = [{"type": "file", "path": p, "size": len(data), "oid": git_blob_sha(data)}
                   for p, data in sorted(commit.files.items()) if p.startswith(prefix)]
        return 200, {}, entries

    def resolve(self, repo: str, rev: str, path: str, body: bytes) -> tuple:
        commit = self._commit(repo, rev)
        if path not in commit.files:
            raise HubError(404, "EntryNotFound", f"{path} does not exist on {rev}", commit=commit.sha)
        data = commit.files[path]
        return 200, {"ETag": f'"{git_blob_sha(data)}"', "X-Repo-Commit": commit.sha,
                     "Content-Type": "application/octet-stream"}, data
