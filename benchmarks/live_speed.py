"""Live mode's speed: edited frames a second, capture-to-picture latency and the share of frames re-detected, for
one face at 640x480, alone and while two more visitors edit photos.

    python benchmarks/live_speed.py [--seconds 20] [--browser] [--json out.json]

A 30 frames/s camera is simulated by a clip made from a wild photo (``celeba_wild_sample``), the face swaying
30 px sideways and 15 px up and down every 3 s. As on the page (Gradio streams the newest webcam frame while the
previous one is edited; older ones are dropped), the editor always takes the newest frame; each frame arrives as
the JPEG a browser sends, is decoded, followed and edited (``stargan.live.FaceTracker``, Blond_Hair=1 with the
page's defaults) and encoded to the JPEG the page shows. Latency: from the frame's capture to its edited JPEG,
on the server (the browser's and the network's share are not in it). The photo-mode visitors are two threads
dragging a slider non-stop on two photos through the same Editor (each edit follows the last at once, as the
page's "always last" slider does): the worst two visitors can do.

``--browser`` also runs the page itself (demo/app.py, in this process) with headless Chromium's fake camera
playing the same sway with each frame's number drawn in, a slider moved, and reads in the page, at every
animation frame, the number of the frame being captured and of the edited picture shown: their difference is
the capture-to-picture latency as a visitor sees it (capture, JPEG, upload, edit, download, display), to a
camera frame (33 ms). Chromium shares the two cores with the server here; a visitor's browser runs on their own
machine. ``live_fastrtc.py`` measures FastRTC the same way.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import threading
import time
from pathlib import Path

import cv2
import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from stargan.face import load_image  # noqa: E402
from stargan.inference import Editor  # noqa: E402
from stargan.live import FaceTracker  # noqa: E402

DATA = ROOT.parent / "shared" / "data" / "celeba_wild_sample"
FPS = 30
PERIOD = 3.0  # seconds for one sway
SETTINGS = {"Blond_Hair": 1.0}


def camera_frames(photo: Path, size=(640, 480), amplitude=(30.0, 15.0)) -> list[bytes]:
    """One sway of the camera as JPEG bytes (quality 0.92, a browser's default), FPS * PERIOD frames."""
    image = load_image(photo)
    w, h = size
    s = max((w + 2 * amplitude[0] + 2) / image.shape[1], (h + 2 * amplitude[1] + 2) / image.shape[0])
    big = cv2.resize(image, (round(image.shape[1] * s), round(image.shape[0] * s)), interpolation=cv2.INTER_AREA)
    cx, cy = (big.shape[1] - w) / 2, (big.shape[0] - h) / 2
    out = []
    for i in range(round(FPS * PERIOD)):
        phase = 2 * np.pi * i / (FPS * PERIOD)
        m = np.float32([[1, 0, -cx - amplitude[0] * np.sin(phase)], [0, 1, -cy - amplitude[1] * np.sin(2 * phase)]])
        frame = cv2.warpAffine(big, m, (w, h), flags=cv2.INTER_LINEAR)
        out.append(cv2.imencode(".jpg", cv2.cvtColor(frame, cv2.COLOR_RGB2BGR), [cv2.IMWRITE_JPEG_QUALITY, 92])[1]
                   .tobytes())
    return out


def live(editor: Editor, frames: list[bytes], seconds: float) -> dict:
    """Edit the newest camera frame, again and again, for ``seconds``."""
    tracker = FaceTracker(editor)
    latencies, done, last = [], 0, -1
    start = time.perf_counter()
    while (now := time.perf_counter()) - start < seconds:
        index = int((now - start) * FPS)  # the newest frame the camera has captured
        if index == last:
            time.sleep(start + (index + 1) / FPS - now)
            continue
        captured = start + index / FPS
        rgb = cv2.cvtColor(cv2.imdecode(np.frombuffer(frames[index % len(frames)], np.uint8), cv2.IMREAD_COLOR),
                           cv2.COLOR_BGR2RGB)
        shown = tracker.edit(rgb, SETTINGS)
        cv2.imencode(".jpg", cv2.cvtColor(shown.image, cv2.COLOR_RGB2BGR), [cv2.IMWRITE_JPEG_QUALITY, 75])
        latencies.append(time.perf_counter() - captured)
        done += 1
        last = index
    elapsed = time.perf_counter() - start
    ms = sorted(v * 1e3 for v in latencies)
    return {"frames_per_s": round(done / elapsed, 2), "frames": done,
            "latency_p50_ms": round(statistics.median(ms), 1),
            "latency_p95_ms": round(ms[int(0.95 * (len(ms) - 1))], 1),
            "redetected_share": round(tracker.redetect_share, 3),
            "camera_frames_dropped_share": round(1 - done / (elapsed * FPS), 3)}


def photo_visitor(editor: Editor, photo: Path, stop: threading.Event, counts: list[int], slot: int) -> None:
    """A visitor dragging sliders on an uploaded photo: one edit after another until ``stop``."""
    prepared = editor.prepare(photo)
    values = np.linspace(0, 1, 11)
    i = 0
    while not stop.is_set():
        editor.edit(prepared, {"Young": float(values[i % 11]), "Smiling": float(values[(i * 3) % 11])})
        counts[slot] += 1
        i += 1


COUNTER_BITS, COUNTER_SIDE, COUNTER_TOP = 7, 24, 60  # a frame number in 24 px squares down both edges
BROWSER_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage", "--use-fake-device-for-media-stream",
                "--use-fake-ui-for-media-stream"]
# In the page: a second capture of the same fake camera (the frame being captured now) and the picture shown
# (an <img> or a <video>), each frame number read from the squares at every animation frame for ``seconds``.
SAMPLER = """async ([selector, seconds, bits, side, top]) => {
  const now = document.createElement('video'); now.muted = true;
  now.srcObject = await navigator.mediaDevices.getUserMedia({video: true}); await now.play();
  const canvas = document.createElement('canvas'), ctx = canvas.getContext('2d', {willReadFrequently: true});
  const read = (el, w, h) => { if (!w || !h) return -1; canvas.width = w; canvas.height = h; ctx.drawImage(el, 0, 0, w, h);
    let n = 0;
    for (let b = 0; b < bits; b++) { const p = ctx.getImageData(Math.round(12 * w / 640),
        Math.round((top + b * side + 12) * h / 480), 1, 1).data; if (p[0] + p[1] + p[2] > 384) n |= 1 << b; }
    return n; };
  const out = [], t0 = performance.now();
  while (performance.now() - t0 < seconds * 1000) {
    await new Promise(r => requestAnimationFrame(r));
    const el = document.querySelector(selector); if (!el) continue;
    const shown = el.tagName === 'VIDEO' ? read(el, el.videoWidth, el.videoHeight)
                                         : (el.complete ? read(el, el.naturalWidth, el.naturalHeight) : -1);
    out.push([read(now, now.videoWidth, now.videoHeight), shown]);
  }
  now.srcObject.getTracks().forEach(t => t.stop());
  return out; }"""


def counter_camera(frames: list[bytes], path: Path) -> int:
    """``frames`` as a YUV4MPEG2 file for Chromium's fake camera, each with its number drawn in black and white
    squares down both edges (so a mirrored picture reads the same); returns the number of frames."""
    with open(path, "wb") as f:
        f.write(f"YUV4MPEG2 W640 H480 F{FPS}:1 Ip A1:1 C420jpeg\n".encode())
        for i, jpeg in enumerate(frames):
            bgr = cv2.imdecode(np.frombuffer(jpeg, np.uint8), cv2.IMREAD_COLOR)
            for b in range(COUNTER_BITS):
                y = COUNTER_TOP + b * COUNTER_SIDE
                bgr[y: y + COUNTER_SIDE, :COUNTER_SIDE] = bgr[y: y + COUNTER_SIDE, -COUNTER_SIDE:] = 255 * (i >> b & 1)
            f.write(b"FRAME\n" + cv2.cvtColor(bgr, cv2.COLOR_BGR2YUV_I420).tobytes())
    return len(frames)


def shown_in_browser(page, selector: str, seconds: float, n_frames: int) -> dict:
    """Capture-to-picture latency (the frame captured now less the frame shown, at each animation frame; to a
    camera frame, 33 ms) and the pictures shown a second, for the element ``selector`` in ``page``."""
    samples = [(a, b) for a, b in page.evaluate(SAMPLER, [selector, seconds, COUNTER_BITS, COUNTER_SIDE, COUNTER_TOP])
               if a >= 0 and b >= 0]
    behind = sorted((a - b) % n_frames * 1000 / FPS for a, b in samples)
    changes = sum(1 for (_, b0), (_, b1) in zip(samples, samples[1:], strict=False) if b1 != b0)
    return {"pictures_per_s": round(changes / seconds, 1), "latency_p50_ms": round(statistics.median(behind)),
            "latency_p95_ms": round(behind[int(0.95 * (len(behind) - 1))]), "samples": len(samples)}


def open_with_camera(pw, demo, camera: Path, viewport: dict[str, int]):
    """Serve ``demo`` on a free loopback port and open it in headless Chromium whose fake camera plays ``camera``
    (a y4m file): (browser, page). The caller closes both."""
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    demo.launch(server_name="127.0.0.1", server_port=port, prevent_thread_lock=True, quiet=True)
    browser = pw.chromium.launch(executable_path="/usr/bin/chromium", headless=True,
                                 args=[*BROWSER_ARGS, f"--use-file-for-fake-video-capture={camera}"])
    page = browser.new_page(viewport=viewport)
    page.goto(f"http://127.0.0.1:{port}/", wait_until="domcontentloaded")
    return browser, page


def through_the_page(frames: list[bytes], seconds: float) -> dict:
    """The page (demo/app.py, in this process) in headless Chromium whose fake camera plays ``frames`` with their
    numbers drawn in: Blond_Hair moved to 1, then the frames edited a second on the server and, in the browser,
    the latency from a frame's capture to its edited picture on the screen."""
    import tempfile

    from playwright.sync_api import sync_playwright

    from stargan import live as live_module

    sys.path.insert(0, str(ROOT / "demo"))
    import app as demo_app

    edits: list[float] = []
    edit = live_module.FaceTracker.edit

    def counted(self, frame, *a, **k):
        edits.append(time.perf_counter())
        return edit(self, frame, *a, **k)

    live_module.FaceTracker.edit = counted  # the page's handler calls it once per frame that reaches the server
    camera = Path(tempfile.mkdtemp(prefix="live-speed-")) / "camera.y4m"
    n_frames = counter_camera(frames, camera)
    demo = demo_app.create()
    try:
        with sync_playwright() as pw:
            browser, page = open_with_camera(pw, demo, camera, {"width": 1500, "height": 1100})
            page.locator("#live-camera button:visible", has_text="Webcam").click(timeout=60_000)
            page.locator("#live-camera button:visible", has_text="Record").click()
            page.locator("#slider-Blond_Hair input[type=range]").fill("1")
            time.sleep(5.0)  # the stream running, the slider's value reached it
            first = len(edits)
            result = shown_in_browser(page, "#live-output img", seconds, n_frames)
            result["server_edits_per_s"] = round((len(edits) - first) / seconds, 1)
            browser.close()
    finally:
        demo.close()
        live_module.FaceTracker.edit = edit
    return result


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--weights", default=str(ROOT / "weights" / "stargan-studio"), help="the model")
    parser.add_argument("--seconds", type=float, default=20.0, help="length of each run (default 20)")
    parser.add_argument("--browser", action="store_true",
                        help="also stream through the page in headless Chromium (/usr/bin/chromium, Playwright)")
    parser.add_argument("--json", type=Path, help="also write the results here")
    args = parser.parse_args(argv)
    editor = Editor(args.weights)
    frames = camera_frames(DATA / "deepface_img2.jpg")
    live(editor, frames, 3.0)  # warm-up: first calls, GrabCut's first run
    results = {"alone": live(editor, frames, args.seconds)}
    print("alone:", json.dumps(results["alone"]), flush=True)
    stop, counts = threading.Event(), [0, 0]
    visitors = [threading.Thread(target=photo_visitor, args=(editor, photo, stop, counts, i))
                for i, photo in enumerate([ROOT / "demo" / "examples" / "astronaut.png",
                                           DATA / "facerec_train_obama_obama.jpg"])]
    for v in visitors:
        v.start()
    time.sleep(2.0)  # both visitors editing
    before = list(counts)
    results["with_two_photo_visitors"] = live(editor, frames, args.seconds)
    results["with_two_photo_visitors"]["photo_edits_per_s_each"] = [
        round((c - b) / args.seconds, 2) for c, b in zip(counts, before, strict=True)]
    stop.set()
    for v in visitors:
        v.join()
    print("with two photo visitors:", json.dumps(results["with_two_photo_visitors"]), flush=True)
    results["precision"] = editor.precision
    if args.browser:
        results["through_the_page"] = through_the_page(frames, args.seconds)
        print("through the page:", json.dumps(results["through_the_page"]), flush=True)
    if args.json:
        args.json.write_text(json.dumps(results, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
