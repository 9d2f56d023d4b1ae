"""End-to-end latency of one slider edit through the demo's API, next to G's bare forward time and a FLOP bound.

    OMP_NUM_THREADS=1 taskset -c 1 python benchmarks/demo_latency.py [--weights W] [--n 40] [--json out.json]

The demo runs in a subprocess on 127.0.0.1 (same CPU pinning as this script); the astronaut is uploaded once
(/prepare: detection, alignment, label reading), then every measured call is one slider move (/edit_live): one
G forward (G(x, c_source) is cached per face), the paste-back of the change into the 512x512 photo, and the PNG
encoding of the result, plus Gradio's queue and HTTP. The FLOP bound is G's FLOPs at the model's size divided by
the assumed peak of one core of this CPU (stated in the output).
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import re
import socket
import statistics
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
ASTRONAUT = ROOT / "demo" / "examples" / "astronaut.png"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@contextlib.contextmanager
def serve(weights: str, timeout: float = 180.0):
    """python demo/app.py on a free loopback port; yields its URL."""
    port = free_port()
    log = open(Path(os.environ.get("TMPDIR", "/tmp")) / f"demo_{port}.log", "w")  # noqa: SIM115 - closed below
    proc = subprocess.Popen([sys.executable, str(ROOT / "demo" / "app.py"), "--weights", weights, "--port", str(port),
                             "--host", "127.0.0.1"], stdout=log, stderr=subprocess.STDOUT, cwd=ROOT)
    url = f"http://127.0.0.1:{port}/"
    try:
        import httpx

        t0 = time.time()
        while True:
            if proc.poll() is not None:
                raise RuntimeError(f"the demo exited with {proc.returncode}; see {log.name}")
            try:
                if httpx.get(url, timeout=2).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            if time.time() - t0 > timeout:
                raise RuntimeError(f"the demo did not start within {timeout} s; see {log.name}")
            time.sleep(0.5)
        yield url
    finally:
        proc.terminate()
        try:
            proc.wait(10)
        except subprocess.TimeoutExpired:
            proc.kill()
        log.close()


# What the page sends with every slider edit before the slider values: strength 1, related attributes and edit
# regions on (its defaults). The page's edit_live inputs after face, mode and upsampling, in order.
EDIT_SETTINGS = (1.0, True, True)


class QueueClient:
    """The page's own protocol, as the browser speaks it: POST /gradio_api/queue/join, then read the server-sent
    events of /gradio_api/queue/data until the result. A persistent connection and no client-side threads, so
    the time measured is the server's (gradio_client adds ~50-150 ms of its own per call on this CPU)."""

    def __init__(self, url: str) -> None:
        import uuid

        import httpx

        self.http = httpx.Client(base_url=url, timeout=120)
        self.session = uuid.uuid4().hex[:12]
        config = self.http.get("/config").json()
        self.fn = {dep.get("api_name"): i for i, dep in enumerate(config["dependencies"]) if dep.get("api_name")}

    def upload(self, path: Path) -> dict:
        with open(path, "rb") as f:
            r = self.http.post("/gradio_api/upload", files={"files": (path.name, f, "image/png")})
        r.raise_for_status()
        return {"path": r.json()[0], "orig_name": path.name, "meta": {"_type": "gradio.FileData"}}

    def call(self, api_name: str, data: list) -> list:
        r = self.http.post("/gradio_api/queue/join", json={"data": data, "fn_index": self.fn[api_name],
                                                           "session_hash": self.session, "event_data": None,
                                                           "trigger_id": None})
        r.raise_for_status()
        with self.http.stream("GET", "/gradio_api/queue/data", params={"session_hash": self.session}) as stream:
            for line in stream.iter_lines():
                if not line.startswith("data:"):
                    continue
                msg = json.loads(line[5:])
                if msg.get("msg") == "process_completed":
                    if not msg.get("success"):
                        raise RuntimeError(f"{api_name} failed: {msg.get('output')}")
                    return msg["output"]["data"]
        raise RuntimeError(f"{api_name}: the stream ended without a result")

    def prepare(self, path: Path = ASTRONAUT) -> list[float]:
        out = self.call("prepare", [self.upload(path), None])
        n = (len(out) - 6) // 2
        return [u["value"] if isinstance(u, dict) else u for u in out[6:6 + n]]

    def edit(self, values: list[float], face: str = "Face 1", mode: str = "delta", upsample: str = "bilinear") -> list:
        return self.call("edit_live", [None, face, mode, upsample, *EDIT_SETTINGS, *values])


def percentile(values: list[float], q: float) -> float:
    values = sorted(values)
    k = (len(values) - 1) * q
    lo, hi = int(k), min(int(k) + 1, len(values) - 1)
    return values[lo] + (values[hi] - values[lo]) * (k - lo)


def prepare_session(client):
    """Upload the astronaut through the page's own endpoint; returns the slider values it set."""
    from gradio_client import handle_file

    out = client.predict(handle_file(str(ASTRONAUT)), api_name="/prepare")
    n = (len(out) - 5) // 2
    return [u["value"] if isinstance(u, dict) else u for u in out[5:5 + n]]


def cpu_peak_gflops(bf16: bool) -> tuple[float, str]:
    """Assumed peak of ONE core: AVX-512 with 2 FMA units = 32 fp32 FMAs = 64 FLOP per cycle (x2 with AVX512-BF16
    dot products), at the clock /proc/cpuinfo reports."""
    mhz = None
    with contextlib.suppress(OSError):
        m = re.search(r"cpu MHz\s*:\s*([\d.]+)", Path("/proc/cpuinfo").read_text())
        mhz = float(m.group(1)) if m else None
    ghz = (mhz or 2500.0) / 1000.0
    per_cycle = 128 if bf16 else 64
    return ghz * per_cycle, f"1 core x {ghz:.2f} GHz x {per_cycle} FLOP/cycle ({'bf16' if bf16 else 'fp32'} AVX-512, 2 FMA units)"


def g_numbers(weights: str) -> dict:
    import torch
    from torch.utils.flop_counter import FlopCounterMode

    from stargan.device import native_bf16
    from stargan.inference import Editor

    editor = Editor(weights)
    # emulated bf16 (no native kernels, e.g. AVX2) runs ~16x slower than fp32 and the editor never picks it:
    # timing it there only costs minutes (a 128 px paper-width G did not finish in 24)
    precisions = ("fp32", "bf16") if native_bf16(torch.device("cpu")) else ("fp32",)
    s = editor.image_size
    x = torch.zeros(1, 3, s, s)
    c = editor.space.g_label(torch.zeros(1, len(editor.space.datasets[0])), editor.space.datasets[0].name)
    # a G conditioned on label differences also reads the face's own labels; one that reads the target ignores them
    source = c.clone()
    out: dict = {"image_size": s, "precision": editor.precision, "precision_report": editor.precision_report}
    peak, peak_text = cpu_peak_gflops(editor.precision == "bf16")
    out.update(peak_gflops=peak, peak_assumed=peak_text)
    with torch.inference_mode():
        # plain G (the architecture) and the editor's G (first convolution's label channels folded, same function)
        for label, G in (("g", editor.model.generator), ("g_folded", editor.generator)):
            with FlopCounterMode(display=False) as counter:
                G(x, c, source=source)
            flops = counter.get_total_flops()
            out[f"{label}_gflops"] = flops / 1e9
            out[f"{label}_flop_bound_ms"] = flops / (peak * 1e9) * 1e3
            for name in precisions:
                ctx = torch.autocast("cpu", dtype=torch.bfloat16) if name == "bf16" else contextlib.nullcontext()
                with ctx:
                    for _ in range(3):
                        G(x, c, source=source)
                    ts = []
                    for _ in range(30):
                        t0 = time.perf_counter()
                        G(x, c, source=source)
                        ts.append(time.perf_counter() - t0)
                out[f"{label}_forward_ms_{name}"] = statistics.median(ts) * 1e3
    return out


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--weights", default=str(ROOT / "weights" / "stargan-studio"))
    parser.add_argument("--n", type=int, default=40, help="slider edits to time")
    parser.add_argument("--json", type=Path)
    args = parser.parse_args()
    from gradio_client import Client

    from demo.app import ALL_NAMES
    from stargan.face import DEFAULT_UPSAMPLE, UPSAMPLES

    g = g_numbers(args.weights)
    i = ALL_NAMES.index("Blond_Hair")
    with serve(args.weights) as url:
        raw = QueueClient(url)
        values = raw.prepare()
        times: dict[str, list[float]] = {m: [] for m in UPSAMPLES}  # both upsamplings, interleaved
        for k in range(args.n + 3):
            values[i] = 0.2 + 0.8 * (k % 5) / 4  # a slider moving back and forth
            for m in UPSAMPLES:
                t0 = time.perf_counter()
                raw.edit(values, upsample=m)
                if k >= 3:  # warm-up
                    times[m].append(time.perf_counter() - t0)
        client = Client(url, verbose=False)
        values = prepare_session(client)
        client_times = []
        for k in range(args.n // 2 + 3):
            values[i] = 0.2 + 0.8 * (k % 5) / 4
            t0 = time.perf_counter()
            client.predict("Face 1", "delta", DEFAULT_UPSAMPLE, *EDIT_SETTINGS, *values, api_name="/edit_live")
            if k >= 3:
                client_times.append(time.perf_counter() - t0)
    per_method = {f"{key}_{m}": percentile(times[m], q) * 1e3 for m in UPSAMPLES
                  for key, q in (("p50_ms", 0.5), ("p95_ms", 0.95))}
    result = {**g, "edits": len(times[DEFAULT_UPSAMPLE]), "p50_ms": per_method[f"p50_ms_{DEFAULT_UPSAMPLE}"],
              "p95_ms": per_method[f"p95_ms_{DEFAULT_UPSAMPLE}"], **per_method,
              "p50_ratio_guided_over_bilinear": per_method["p50_ms_guided"] / per_method["p50_ms_bilinear"],
              "gradio_client_p50_ms": percentile(client_times, 0.5) * 1e3,
              "gradio_client_p95_ms": percentile(client_times, 0.95) * 1e3,
              "command": " ".join([Path(sys.executable).name, *sys.argv])}
    for k, v in result.items():
        print(f"{k}: {v:.2f}" if isinstance(v, float) else f"{k}: {v}")
    if args.json:
        args.json.write_text(json.dumps(result, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
