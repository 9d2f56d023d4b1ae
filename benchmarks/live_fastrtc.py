"""The same live edit over FastRTC (WebRTC) instead of Gradio's streaming, measured as live_speed.py --browser
measures the page: headless Chromium's fake camera plays the swaying clip with each frame's number drawn in, and
the page reads the frame being captured and the edited frame shown at every animation frame.

FastRTC's current release (0.0.34) requires gradio<6, and the page runs Gradio 6, so this runs a minimal page
(the webcam in, Blond_Hair at 1, the picture out) in a separate environment:

    python -m venv --system-site-packages /tmp/rtc && /tmp/rtc/bin/pip install fastrtc==0.0.34
    OMP_NUM_THREADS=1 /tmp/rtc/bin/python benchmarks/live_fastrtc.py [--seconds 15]

On the loopback no TURN server is needed; on a Hugging Face Space one is (a Cloudflare or Twilio account).
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from pathlib import Path

import cv2

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "benchmarks"))

from live_speed import DATA, camera_frames, counter_camera, open_with_camera, shown_in_browser  # noqa: E402

from stargan.inference import Editor  # noqa: E402
from stargan.live import FaceTracker  # noqa: E402


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=15.0, help="length of the measurement (default 15)")
    args = parser.parse_args(argv)
    import gradio as gr
    from fastrtc import VideoStreamHandler, WebRTC
    from playwright.sync_api import sync_playwright

    tracker = FaceTracker(Editor())
    edits: list[float] = []

    def handler(bgr, blond):  # FastRTC hands over BGR frames and takes BGR back
        edits.append(time.perf_counter())
        shown = tracker.edit(cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB), {"Blond_Hair": float(blond)} if blond else {})
        return cv2.cvtColor(shown.image, cv2.COLOR_RGB2BGR)

    with gr.Blocks() as demo:
        rtc = WebRTC(label="live", mode="send-receive", modality="video", elem_id="rtc", height=480)
        blond = gr.Slider(0, 1, value=0, elem_id="blond")
        # skip_frames: the newest frame is edited and older ones dropped, as Gradio's streaming does
        rtc.stream(VideoStreamHandler(handler, skip_frames=True), inputs=[rtc, blond], outputs=[rtc], time_limit=120,
                   concurrency_limit=1)
    camera = Path(tempfile.mkdtemp(prefix="live-fastrtc-")) / "camera.y4m"
    n_frames = counter_camera(camera_frames(DATA / "deepface_img2.jpg"), camera)
    try:
        with sync_playwright() as pw:
            browser, page = open_with_camera(pw, demo, camera, {"width": 1200, "height": 1400})
            time.sleep(5.0)
            # the Record button sits under Gradio's footer in a headless window: click it from the page
            page.locator("#rtc button:visible", has_text="Record").evaluate("b => b.click()")
            time.sleep(3.0)
            page.locator("#blond input[type=range]").fill("1")
            time.sleep(5.0)
            first = len(edits)
            result = shown_in_browser(page, "#rtc video", args.seconds, n_frames)
            result["server_edits_per_s"] = round((len(edits) - first) / args.seconds, 1)
            browser.close()
    finally:
        demo.close()
    print("fastrtc:", json.dumps(result), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
