"""The demo in a real Chromium (Debian package) driven by Playwright: upload, move a slider, tick a checkbox."""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import pytest

from conftest import CHROMIUM, CHROMIUM_ARGS, served_demo

ROOT = Path(__file__).resolve().parents[1]
ASTRONAUT = ROOT / "demo" / "examples" / "astronaut.png"
DOCS_SCREENSHOT = ROOT / "docs" / "demo.png"


@pytest.fixture(scope="module")
def url():
    with served_demo() as (page_url, _):
        yield page_url


def _output_src(page) -> str | None:
    """The edited photo: the last image of the before | after slider."""
    img = page.locator("#output-photo img")
    return img.last.get_attribute("src") if img.count() else None


def _wait_change(page, old: str | None, timeout_ms: int = 30_000) -> str:
    page.wait_for_function(
        """old => { const all = document.querySelectorAll('#output-photo img'), i = all[all.length - 1];
                    return i && i.getAttribute('src') && i.getAttribute('src') !== old && i.complete; }""",
        arg=old, timeout=timeout_ms)
    return _output_src(page)


def test_upload_slider_checkbox(url, tmp_path):
    from playwright.sync_api import sync_playwright

    with sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS, headless=True)
        try:
            page = browser.new_page(viewport={"width": 1500, "height": 1100})
            errors: list[str] = []
            page.on("pageerror", lambda e: errors.append(str(e)))
            page.goto(url, wait_until="domcontentloaded")
            page.locator("#input-photo input[type=file]").wait_for(state="attached", timeout=60_000)
            # a user mistake first: a text file renamed .jpg gets a readable message, and the page keeps working
            notes = tmp_path / "notes.jpg"
            notes.write_text("this is not a photo")
            page.locator("#input-photo input[type=file]").set_input_files(str(notes))
            toast = page.locator(".toast-body, [data-testid='toast-body']").filter(has_text="not an image")
            toast.first.wait_for(timeout=30_000)
            page.screenshot(path=str(tmp_path / "0_not_an_image.png"), full_page=True)
            page.reload(wait_until="domcontentloaded")
            page.locator("#input-photo input[type=file]").wait_for(state="attached", timeout=60_000)
            page.locator("#input-photo input[type=file]").set_input_files(str(ASTRONAUT))
            first = _wait_change(page, None, 60_000)
            page.wait_for_function("() => document.querySelector('#status')?.innerText.includes('face')")
            page.screenshot(path=str(tmp_path / "1_uploaded.png"), full_page=True)

            slider = page.locator("#slider-Blond_Hair input[type=range]")
            slider.fill("1")  # sets the value and fires the input event, as a drag does
            second = _wait_change(page, first)
            assert second != first
            page.screenshot(path=str(tmp_path / "2_slider.png"), full_page=True)

            box = page.locator("#check-Bangs input[type=checkbox]")
            was_on = box.is_checked()  # starts at what D_cls reads (on when Bangs >= 0.5)
            box.click()
            third = _wait_change(page, second)
            assert third != second
            expected = 0.0 if was_on else 1.0  # the toggle sets the slider to 0 / 1
            assert float(page.locator("#slider-Bangs input[type=number]").input_value()) == expected
            shot = tmp_path / "3_checkbox.png"
            page.screenshot(path=str(shot), full_page=True)
            assert not errors, errors
            if os.environ.get("STARGAN_UPDATE_DOCS_SCREENSHOT"):
                DOCS_SCREENSHOT.parent.mkdir(exist_ok=True)
                shutil.copyfile(shot, DOCS_SCREENSHOT)
            # a gender edit, then "Related attributes follow" (off by default) ticked: a different picture
            page.locator("#check-Male input[type=checkbox]").click()
            fourth = _wait_change(page, third)
            related = page.locator("#related input[type=checkbox]")
            assert not related.is_checked()
            related.click()
            fifth = _wait_change(page, fourth)
            assert fifth != fourth
            # "Keep each edit in its place" (on by default) unticked: G's change reaches the background too
            regions = page.locator("#regions input[type=checkbox]")
            assert regions.is_checked()
            regions.click()
            assert _wait_change(page, fifth) != fifth
            assert not errors, errors
        finally:
            browser.close()
