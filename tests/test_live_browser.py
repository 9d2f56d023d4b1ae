"""Live mode in a real Chromium (Debian package, driven by Playwright) whose camera is a video made here: start the
camera, move a slider, and the edited frames that come back differ from the camera's at the face, not elsewhere."""

from __future__ import annotations

import base64
import os
from pathlib import Path

import cv2
import numpy as np
import pytest
from test_live import PHOTO, face_share, moving_clip

from conftest import CHROMIUM, data_path, served_demo
from conftest import CHROMIUM_ARGS as BROWSER_ARGS

ROOT = Path(__file__).resolve().parents[1]
CHROMIUM_ARGS = [*BROWSER_ARGS, "--use-fake-device-for-media-stream", "--use-fake-ui-for-media-stream"]
DOCS_SCREENSHOT = ROOT / "docs" / "live.png"


def write_y4m(path: Path, frames: list[np.ndarray], fps: int = 10) -> None:
    """RGB frames as a YUV4MPEG2 (4:2:0) file: what Chromium's fake camera plays, in a loop."""
    h, w = frames[0].shape[:2]
    with open(path, "wb") as f:
        f.write(f"YUV4MPEG2 W{w} H{h} F{fps}:1 Ip A1:1 C420jpeg\n".encode())
        for frame in frames:
            f.write(b"FRAME\n" + cv2.cvtColor(frame, cv2.COLOR_RGB2YUV_I420).tobytes())


@pytest.fixture(scope="module")
def page_url():
    with served_demo() as served:
        yield served


def test_live_mode_edits_the_camera(page_url, tmp_path):
    from playwright.sync_api import sync_playwright

    url, demo = page_url
    _, frames, _ = moving_clip(data_path("celeba_wild_sample", PHOTO), size=(640, 480), n=1)
    camera = tmp_path / "camera.y4m"
    write_y4m(camera, frames * 3)  # a still camera: every frame the server edits is this one
    # what the page sends: the YUV 4:2:0 picture, mirrored as Gradio shows a webcam
    seen = cv2.cvtColor(cv2.cvtColor(frames[0], cv2.COLOR_RGB2YUV_I420), cv2.COLOR_YUV2RGB_I420)[:, ::-1]
    face = demo.models.get(None).detector.detect(seen)[0]
    centre, eye = face.landmarks.mean(0), float(np.hypot(*(face.landmarks[1] - face.landmarks[0])))

    with sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=str(CHROMIUM), headless=True,
                                     args=[*CHROMIUM_ARGS, f"--use-file-for-fake-video-capture={camera}"])
        try:
            page = browser.new_page(viewport={"width": 1500, "height": 1100})
            errors: list[str] = []
            page.on("pageerror", lambda e: errors.append(str(e)))
            page.goto(url, wait_until="domcontentloaded")
            page.locator("#live-camera button:visible", has_text="Webcam").click(timeout=60_000)
            page.locator("#live-camera button:visible", has_text="Record").click(timeout=30_000)

            def next_frame(old: str | None) -> tuple[str, np.ndarray]:
                page.wait_for_function(
                    """old => { const i = document.querySelector('#live-output img');
                                return i && i.getAttribute('src') && i.getAttribute('src') !== old && i.complete; }""",
                    arg=old, timeout=60_000)
                shown = None
                while shown is None:  # the picture as it is shown (null while the next one is loading)
                    shown = page.locator("#live-output img").first.evaluate(
                        """i => { if (!i.complete || !i.naturalWidth) return null;
                                  const c = document.createElement('canvas');
                                  c.width = i.naturalWidth; c.height = i.naturalHeight; c.getContext('2d').drawImage(i, 0, 0);
                                  return [i.getAttribute('src'), c.toDataURL('image/png')]; }""")
                src, png = shown
                data = np.frombuffer(base64.b64decode(png.split(",", 1)[1]), np.uint8)
                image = cv2.cvtColor(cv2.imdecode(data, cv2.IMREAD_COLOR), cv2.COLOR_BGR2RGB)
                assert image.shape == seen.shape, image.shape
                return src, image

            # no slider moved yet: the camera's picture comes back as it was (JPEG both ways), once the camera
            # has started (its first frames can be black)
            src, image = next_frame(None)
            for _ in range(10):
                if image.mean() > 40:
                    break
                src, image = next_frame(src)
            near, far = face_share(seen, image, centre, 2.5 * eye)
            assert near < 4.0 and far < 4.0, (near, far)

            page.locator("#slider-Blond_Hair input[type=range]").fill("1")
            for _ in range(2):  # the slider applies to the running stream, frame after frame
                src, image = next_frame(src)
                near, far = face_share(seen, image, centre, 2.5 * eye)
                assert near > 6.0 and near > 3 * far, (near, far)
            page.wait_for_timeout(500)
            live, slider = page.locator("#live").bounding_box(), page.locator("#slider-Blond_Hair").bounding_box()
            sx, sy = page.evaluate("[window.scrollX, window.scrollY]")  # boxes are in the viewport, clips in the page
            top = min(live["y"], slider["y"]) - 8
            clip = {"x": live["x"] + sx - 8, "y": top + sy, "width": slider["x"] + slider["width"] - live["x"] + 16,
                    "height": max(live["y"] + live["height"], slider["y"] + slider["height"]) - top + 8}
            shot = tmp_path / "live.png"
            page.screenshot(path=str(shot), clip=clip, full_page=True)
            assert not errors, errors
            if os.environ.get("STARGAN_UPDATE_DOCS_SCREENSHOT"):
                DOCS_SCREENSHOT.write_bytes(shot.read_bytes())
        finally:
            browser.close()
