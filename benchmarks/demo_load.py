"""Bounded load test of the demo on loopback: C concurrent clients x N slider edits each, zero errors expected.

    OMP_NUM_THREADS=1 taskset -c 1 python benchmarks/demo_load.py [--clients 8] [--requests 10] [--json out.json]

Each client is a browser-like session (the page's queue protocol, see demo_latency.QueueClient): it uploads the
astronaut once (/prepare) and then moves a slider N times (/edit_live), one request after the other. Reports
errors, latency p50/p95 of the edits (queueing included) and throughput. Nothing leaves 127.0.0.1.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
import traceback
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(Path(__file__).resolve().parent))

from demo_latency import QueueClient, percentile, serve  # noqa: E402


def run_load(url: str, clients: int, requests: int) -> dict:
    from demo.app import ALL_NAMES

    index = ALL_NAMES.index("Blond_Hair")

    def session(k: int) -> tuple[list[float], list[str]]:
        times, errors = [], []
        try:
            client = QueueClient(url)
            values = client.prepare()
        except Exception as e:  # noqa: BLE001 - counted and reported
            return times, [f"client {k} prepare: {e!r}"]
        for j in range(requests):
            values[index] = ((k + j) % 5) / 4
            t0 = time.perf_counter()
            try:
                out = client.edit(values)
                if not out or out[1] is None:
                    raise RuntimeError(f"no image in {out!r}")
                times.append(time.perf_counter() - t0)
            except Exception:  # noqa: BLE001
                errors.append(f"client {k} edit {j}: {traceback.format_exc(limit=1)}")
        return times, errors

    t0 = time.perf_counter()
    with ThreadPoolExecutor(clients) as pool:
        results = list(pool.map(session, range(clients)))
    wall = time.perf_counter() - t0
    times = [t for ts, _ in results for t in ts]
    errors = [e for _, es in results for e in es]
    return {"clients": clients, "requests_per_client": requests, "ok": len(times), "errors": len(errors),
            "error_messages": errors[:5], "p50_ms": percentile(times, 0.5) * 1e3 if times else None,
            "p95_ms": percentile(times, 0.95) * 1e3 if times else None, "wall_s": wall,
            "edits_per_s": len(times) / wall}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--weights", default=str(ROOT / "weights" / "stargan-studio"))
    parser.add_argument("--clients", type=int, default=8)
    parser.add_argument("--requests", type=int, default=10)
    parser.add_argument("--json", type=Path)
    args = parser.parse_args()
    with serve(args.weights) as url:
        result = run_load(url, args.clients, args.requests)
    result["command"] = " ".join([Path(sys.executable).name, *sys.argv])
    for k, v in result.items():
        print(f"{k}: {v:.1f}" if isinstance(v, float) else f"{k}: {v}")
    if args.json:
        args.json.write_text(json.dumps(result, indent=2))
    return 0 if result["errors"] == 0 and result["ok"] == args.clients * args.requests else 1


if __name__ == "__main__":
    sys.exit(main())
