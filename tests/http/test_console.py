"""The web console in a real headless Chromium (Debian's, driven by Playwright) against a
real `facedb serve`: sign in, enroll a real LFW person by drag-and-drop, browse their face
crops, identify and verify them, delete them; a search key sees no crops. Screenshots go
to bench-out/console/."""

from __future__ import annotations

import base64
import mimetypes
import re
from collections.abc import Iterator
from pathlib import Path

import pytest
import requests
from playwright.sync_api import Browser, ConsoleMessage, Page, expect, sync_playwright

from tests.http.support import start_http_server
from tests.paths import EDGE, LFW, REPO
from tests.service.support import ADMIN_KEY, ServerProcess

CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]
SCREENSHOTS = REPO / "bench-out" / "console"
PERSON = "Colin_Powell"
PHOTOS = [LFW / "images" / PERSON / f"{PERSON}_{n:04d}.jpg" for n in (1, 2, 3, 4)]
NO_FACE = EDGE / "no_face" / "skimage_coffee.png"
OTHER = LFW / "images" / "Gray_Davis" / "Gray_Davis_0001.jpg"


@pytest.fixture(scope="module")
def served(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[ServerProcess, str]]:
    data_dir = tmp_path_factory.mktemp("console-data")
    server, base = start_http_server(data_dir, data_dir / "server.log")
    headers = {"x-api-key": ADMIN_KEY}
    response = requests.post(base + "/v1/galleries", json={"name": "a"}, headers=headers)
    assert response.status_code == 201
    with OTHER.open("rb") as photo:
        enrolled = requests.post(
            base + "/v1/galleries/a/enroll",
            data={"external_id": "Gray_Davis"},
            files={"images": photo},
            headers=headers,
            timeout=120,
        )
    assert enrolled.status_code == 200
    try:
        yield server, base
    finally:
        assert server.stop() == 0


@pytest.fixture(scope="module")
def browser() -> Iterator[Browser]:
    if not CHROMIUM.exists():
        pytest.fail("Chromium not found at /usr/bin/chromium: apt-get install -y chromium")
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
        yield browser
        browser.close()


@pytest.fixture
def page(browser: Browser) -> Iterator[Page]:
    """A fresh tab; any script error or refused resource (CSP) fails the test."""
    context = browser.new_context(viewport={"width": 1280, "height": 900})
    page = context.new_page()
    problems: list[str] = []
    page.on("pageerror", lambda error: problems.append(str(error)))
    page.on("console", lambda message: _note_error(message, problems))
    yield page
    context.close()
    assert problems == []


def _note_error(message: ConsoleMessage, problems: list[str]) -> None:
    # A refused API call logs a network error by design (e.g. a wrong key's 401).
    if message.type == "error" and "status of 401" not in message.text:
        problems.append(message.text)


def sign_in(page: Page, base: str, key: str) -> None:
    page.goto(base + "/")
    page.fill("#api-key", key)
    page.click("#sign-in")


def drop_files(page: Page, selector: str, paths: list[Path]) -> None:
    """A real drop event on the element, carrying the files as a DataTransfer."""
    files = [
        {
            "name": path.name,
            "type": mimetypes.guess_type(path.name)[0] or "application/octet-stream",
            "data": base64.b64encode(path.read_bytes()).decode(),
        }
        for path in paths
    ]
    page.evaluate(
        """([selector, files]) => {
            const transfer = new DataTransfer();
            for (const f of files) {
                const bytes = Uint8Array.from(atob(f.data), (c) => c.charCodeAt(0));
                transfer.items.add(new File([bytes], f.name, { type: f.type }));
            }
            const zone = document.querySelector(selector);
            for (const type of ["dragenter", "dragover", "drop"]) {
                zone.dispatchEvent(new DragEvent(type, {
                    dataTransfer: transfer, bubbles: true, cancelable: true }));
            }
        }""",
        [selector, files],
    )


def shot(page: Page, name: str) -> None:
    page.screenshot(path=str(SCREENSHOTS / name), full_page=True)


def test_a_wrong_key_is_refused(served: tuple, page: Page) -> None:
    sign_in(page, served[1], "not-a-key")
    expect(page.locator("#login-error")).to_have_text("UNAUTHENTICATED: unknown API key")
    expect(page.locator("#main")).to_be_hidden()
    shot(page, "01-sign-in-refused.png")


def test_enroll_identify_verify_delete_a_person(served: tuple, page: Page) -> None:
    sign_in(page, served[1], ADMIN_KEY)
    expect(page.locator("#gallery-list button")).to_have_count(1)
    page.fill("#new-gallery", "people")
    page.click("#create-gallery-submit")
    expect(page.locator("#gallery-list button")).to_have_count(2)
    expect(page.locator("#gallery-title")).to_have_text("people")  # opened once created
    shot(page, "02-galleries.png")
    page.click("button[data-tab=enroll]")
    page.fill("#enroll-id", PERSON)
    page.fill("#enroll-name", "Colin Powell")
    drop_files(page, "#drop-zone", [PHOTOS[0], PHOTOS[1], NO_FACE])
    expect(page.locator("#enroll-queue img")).to_have_count(3)
    page.click("#enroll-submit")
    rows = page.locator("#enroll-results tbody tr")
    expect(rows).to_have_count(3)
    expect(page.locator("#enroll-results tr.accepted")).to_have_count(2)
    refused = page.locator("#enroll-results tr.refused td")
    expect(refused.nth(0)).to_have_text(NO_FACE.name)
    expect(refused.nth(2)).to_have_text("NO_FACE")
    assert refused.nth(4).inner_text() != ""  # the threshold it failed
    accepted = page.locator("#enroll-results tr.accepted td")
    expect(accepted.nth(0)).to_have_text(PHOTOS[0].name)  # the server's image_name
    expect(accepted.nth(6)).to_have_text(re.compile(r"^\(\d+, \d+\)–\(\d+, \d+\)$"))
    expect(refused.nth(6)).to_have_text("")  # no face: no box
    expect(page.locator("#enroll-summary")).to_contain_text("2 of 3 photos accepted")
    shot(page, "03-enroll-gate-results.png")

    page.click("button[data-tab=identities]")
    card = page.locator(f".identity[data-id={PERSON}]")
    expect(card.locator("h3")).to_have_text("Colin Powell")
    page.wait_for_function(
        f"""() => {{
            const crops = [...document.querySelectorAll('.identity[data-id={PERSON}] img')];
            return crops.length === 2 && crops.every((i) => i.complete && i.naturalWidth === 112);
        }}"""
    )
    shot(page, "04-identities-with-crops.png")

    page.click("button[data-tab=identify]")
    page.set_input_files("#identify-file", str(PHOTOS[2]))
    page.click("#identify-submit")
    best = page.locator("#identify-results tr.candidate").first
    expect(best.locator("td").first).to_have_text(PERSON)
    threshold = float(page.locator("#identify-threshold").inner_text().split("threshold ")[1][:5])
    assert float(best.locator("td").nth(2).inner_text()) >= threshold
    expect(page.locator("#identify-canvas")).to_have_attribute("data-boxes", "1")
    shot(page, "05-identify-boxes-and-candidates.png")

    page.click("button[data-tab=verify]")
    page.set_input_files("#verify-probe", str(PHOTOS[3]))
    page.fill("#verify-identity", PERSON)
    page.click("#verify-submit")
    expect(page.locator("#verify-result")).to_contain_text("same person")
    expect(page.locator("#verify-canvas")).to_have_attribute("data-boxes", "1")
    shot(page, "06-verify.png")

    page.click("button[data-tab=identities]")
    page.once("dialog", lambda dialog: dialog.dismiss())
    card.locator("button.delete").click()
    expect(card).to_have_count(1)  # dismissed: nothing deleted
    page.once("dialog", lambda dialog: dialog.accept())
    card.locator("button.delete").click()
    expect(card).to_have_count(0)
    expect(page.locator("#status")).to_contain_text(f"deleted {PERSON} (2 faces removed)")
    shot(page, "07-deleted.png")
    gone = requests.get(
        f"{served[1]}/v1/galleries/people/identities/{PERSON}",
        headers={"x-api-key": ADMIN_KEY},
        timeout=30,
    )
    assert gone.status_code == 404


def test_a_search_key_sees_no_crops_and_cannot_enroll_or_delete(served: tuple, page: Page) -> None:
    sign_in(page, served[1], "search-a")
    expect(page.locator("#gallery-list button")).to_have_count(1)  # only its gallery
    page.click("#gallery-list button[data-name=a]")
    card = page.locator(".identity[data-id=Gray_Davis]")
    expect(card).to_contain_text("face crops hidden")
    expect(card.locator("img")).to_have_count(0)
    expect(card.locator("button.delete")).to_have_count(0)
    expect(page.locator("button[data-tab=enroll]")).to_be_hidden()
    expect(page.locator("#create-gallery")).to_be_hidden()
    shot(page, "08-search-key-no-crops.png")
