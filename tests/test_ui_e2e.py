"""The viewer at `/` in a real headless browser: Debian's chromium driven by Python Playwright.

Each test gets a fresh browser profile and the real app over real HTTP on a data folder under
tmp_path. Waits are Playwright's `expect` (polling with a timeout), never sleeps.
`tests/e2e/setup.sh` installs chromium (CI calls it); without it these tests skip. Set
THREADLINE_UPDATE_SCREENSHOT=1 to refresh docs/screenshot.png from the screenshot test.
"""

from __future__ import annotations

import asyncio
import os
import shutil
import sys
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path
from typing import Any

import openai
import pytest
from aiohttp.test_utils import TestServer

from service.app import create_app
from service.config import Config

from .jan import jan_message, jan_thread, write_thread
from .procs import APPENDER, free_port, parse_line, read_lines

playwright_api = pytest.importorskip("playwright.async_api")
async_playwright = playwright_api.async_playwright
expect = playwright_api.expect

CHROMIUM = Path("/usr/bin/chromium")
ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--no-first-run",
        "--disable-background-networking", "--disable-component-update", "--disable-sync"]
ROOT = Path(__file__).resolve().parent.parent
SCREENSHOT = ROOT / "docs" / "screenshot.png"
WAIT_MS = 10_000
PNG_1PX = ("data:image/png;base64,iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mP8"
           "z8BQDwAEhQGAhKmMIQAAAABJRU5ErkJggg==")

pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(not CHROMIUM.exists(),
                       reason="needs Debian's chromium: run tests/e2e/setup.sh (CI does)"),
]


class Browser:
    """A page in a fresh profile, recording what must never happen: dialogs and script errors."""

    def __init__(self, context: Any, page: Any) -> None:
        self.context = context
        self.page = page
        self.dialogs: list[str] = []
        self.errors: list[str] = []
        self.requests: list[str] = []
        page.on("dialog", self._dialog)
        page.on("pageerror", lambda e: self.errors.append(str(e)))
        page.on("request", lambda r: self.requests.append(r.url))

    async def _dialog(self, dialog: Any) -> None:
        self.dialogs.append(dialog.message)
        await dialog.dismiss()

    async def open(self, server: TestServer, path: str = "/") -> Any:
        await self.page.goto(str(server.make_url(path)))
        await expect(self.page.locator("#status")).to_have_attribute("data-state", "live",
                                                                     timeout=WAIT_MS)
        return self.page


@pytest.fixture
async def browser(tmp_path: Path) -> AsyncIterator[Browser]:
    async with async_playwright() as pw:
        context = await pw.chromium.launch_persistent_context(
            str(tmp_path / "profile"), executable_path=str(CHROMIUM), headless=True, args=ARGS,
            viewport={"width": 1100, "height": 700})
        try:
            page = context.pages[0] if context.pages else await context.new_page()
            b = Browser(context, page)
            yield b
            assert b.errors == [], f"script errors on the page: {b.errors}"
        finally:
            await context.close()


def client_for(server: TestServer, key: str = "unused") -> openai.AsyncOpenAI:
    return openai.AsyncOpenAI(base_url=str(server.make_url("/v1")), api_key=key, max_retries=0,
                              _strict_response_validation=True)


async def append_from_another_process(folder: Path, count: int, prefix: str) -> None:
    """tests/appender.py: a separate program appending canonical lines under the thread's lock."""
    proc = await asyncio.create_subprocess_exec(
        sys.executable, str(APPENDER), str(folder), str(count), prefix,
        stdout=asyncio.subprocess.DEVNULL)
    assert await asyncio.wait_for(proc.wait(), 30) == 0


def remove_line(path: Path, message_id: str) -> None:
    """Rewrite `path` without the line of `message_id` (temp file and rename, as Jan does)."""
    lines, tail = read_lines(path)
    kept = [line for line in lines if (parse_line(line) or {}).get("id") != message_id]
    assert len(kept) == len(lines) - 1 and not tail
    tmp = path.with_suffix(".tmp")
    tmp.write_bytes(b"".join(line + b"\n" for line in kept))
    tmp.replace(path)


def messages(page: Any) -> Any:
    return page.locator("#messages .msg")


def message(page: Any, message_id: str) -> Any:
    return page.locator(f'#messages .msg[data-id="{message_id}"]')


async def test_messages_from_the_api_and_another_process_appear_live_and_deleted_ones_vanish(
        browser: Browser, server: TestServer, data_dir: Path, sdk: openai.AsyncOpenAI) -> None:
    thread = await sdk.beta.threads.create(metadata={"title": "Live thread"},
                                           messages=[{"role": "user", "content": "first"}])
    page = await browser.open(server, f"/#{thread.id}")
    await expect(messages(page)).to_have_count(1, timeout=WAIT_MS)
    await expect(page.locator("#thread-title")).to_have_text("Live thread")

    created = await sdk.beta.threads.messages.create(thread.id, role="assistant",
                                                     content="from the API")
    await expect(message(page, created.id)).to_contain_text("from the API", timeout=WAIT_MS)

    await append_from_another_process(data_dir / "threads" / thread.id, 1, "ext_")
    await expect(message(page, "ext_0")).to_contain_text("external ext_0", timeout=WAIT_MS)
    await expect(messages(page)).to_have_count(3)

    await sdk.beta.threads.messages.delete(created.id, thread_id=thread.id)
    await expect(message(page, created.id)).to_have_count(0, timeout=WAIT_MS)
    await expect(messages(page)).to_have_count(2)
    item = page.locator(f'#threads li[data-id="{thread.id}"]')
    await expect(item.locator(".t-count")).to_have_text("2 messages", timeout=WAIT_MS)

    newer = await sdk.beta.threads.create(metadata={"title": "Made while watching"})
    await expect(page.locator("#threads li").first).to_have_attribute("data-id", newer.id,
                                                                      timeout=WAIT_MS)
    await sdk.beta.threads.delete(newer.id)
    await expect(page.locator(f'#threads li[data-id="{newer.id}"]')).to_have_count(0,
                                                                                  timeout=WAIT_MS)
    assert await page.evaluate("location.hash") == f"#{thread.id}"  # never reloaded


async def test_message_content_is_inert_text_and_images_load_only_on_click(
        browser: Browser, server: TestServer, sdk: openai.AsyncOpenAI) -> None:
    payloads = [
        "<script>window.__pwned = 1; alert(1)</script>",
        '<img src=x onerror="window.__pwned = 2; alert(2)">',
        '"><svg onload="window.__pwned = 3">',
    ]
    probe = str(server.make_url("/ui/favicon.svg?probe=1"))
    thread = await sdk.beta.threads.create(metadata={"title": payloads[1]})
    ids = [(await sdk.beta.threads.messages.create(thread.id, role="user", content=p)).id
           for p in payloads]
    image = await sdk.beta.threads.messages.create(thread.id, role="user", content=[
        {"type": "image_url", "image_url": {"url": probe}},
        {"type": "image_url", "image_url": {"url": "javascript:window.__pwned=4"}},
        {"type": "image_url", "image_url": {"url": PNG_1PX}},
    ])
    page = await browser.open(server, f"/#{thread.id}")
    await expect(messages(page)).to_have_count(4, timeout=WAIT_MS)

    for message_id, payload in zip(ids, payloads, strict=True):
        await expect(message(page, message_id).locator(".m-text")).to_have_text(payload)
    await expect(page.locator("#thread-title")).to_have_text(payloads[1])
    await expect(page.locator(f'#threads li[data-id="{thread.id}"] .t-title')).to_have_text(
        payloads[1])
    assert await page.locator("#messages img, #messages svg, #messages script").count() == 0
    assert await page.evaluate("window.__pwned") is None
    assert browser.dialogs == []
    assert not [u for u in browser.requests if "probe=1" in u]  # not fetched on its own

    parts = message(page, image.id).locator(".m-part")
    await expect(parts.locator("button")).to_have_count(3)
    await expect(parts.nth(1).locator("button")).to_be_disabled()  # javascript: is never a source
    async with page.expect_request(lambda r: "probe=1" in r.url):
        await parts.nth(0).locator("button").click()
    await parts.nth(1).locator("button").click(force=True)
    await parts.nth(2).locator("button").click()  # the data: image
    images = message(page, image.id).locator("img")
    await expect(images).to_have_count(2)
    await expect(images.nth(1)).to_have_attribute("src", PNG_1PX)
    await expect(parts.nth(1).locator("button")).to_have_count(1)  # still just a disabled button
    assert await page.evaluate("window.__pwned") is None
    assert browser.dialogs == []


async def test_with_an_api_key_the_page_asks_once_per_session_and_then_works(
        browser: Browser, start_server: Callable[..., Awaitable[TestServer]]) -> None:
    server = await start_server(api_keys=("s3cret-key",))
    async with client_for(server, "s3cret-key") as sdk:
        thread = await sdk.beta.threads.create(metadata={"title": "Guarded"})
        page = browser.page
        await page.goto(str(server.make_url("/")))
        dialog = page.locator("#key-dialog")
        await expect(dialog).to_be_visible(timeout=WAIT_MS)
        await page.fill("#key-input", "wrong-key")
        await page.press("#key-input", "Enter")
        await expect(page.locator("#key-error")).to_be_visible(timeout=WAIT_MS)
        await page.fill("#key-input", "s3cret-key")
        await page.press("#key-input", "Enter")
        await expect(dialog).to_be_hidden()
        await expect(page.locator("#status")).to_have_attribute("data-state", "live",
                                                                timeout=WAIT_MS)
        await page.click(f'#threads li[data-id="{thread.id}"]')
        await expect(page.locator("#messages .older")).to_have_text("No messages yet.",
                                                                    timeout=WAIT_MS)
        created = await sdk.beta.threads.messages.create(thread.id, role="assistant",
                                                         content="seen through the key")
        await expect(message(page, created.id)).to_contain_text("seen through the key",
                                                                timeout=WAIT_MS)

        await page.reload()
        await expect(page.locator("#status")).to_have_attribute("data-state", "live",
                                                                timeout=WAIT_MS)
        await expect(message(page, created.id)).to_have_count(1, timeout=WAIT_MS)
        await expect(dialog).to_be_hidden()  # kept for the session: not asked again


async def test_scrolling_up_loads_older_pages_in_order(
        browser: Browser, data_dir: Path, start_server: Callable[..., Awaitable[TestServer]]
        ) -> None:
    total = 230
    write_thread(data_dir, "jan_long", jan_thread("jan_long", "Long"), [
        jan_message(f"m{i:03d}", "jan_long", f"message {i}", created_ms=1717666240000 + i * 1000)
        for i in range(total)])
    server = await start_server()
    page = await browser.open(server, "/#jan_long")
    await expect(messages(page)).to_have_count(50, timeout=WAIT_MS)
    await expect(message(page, f"m{total - 1:03d}")).to_be_in_viewport()  # opens at the bottom
    for shown in (100, 150, 200, total):
        await page.locator("#messages").evaluate("box => { box.scrollTop = 0; }")
        await expect(messages(page)).to_have_count(shown, timeout=WAIT_MS)
    order = await messages(page).evaluate_all("nodes => nodes.map(n => n.dataset.id)")
    assert order == [f"m{i:03d}" for i in range(total)]
    await expect(page.locator("#messages .older")).to_have_text("Beginning of thread")


async def test_keyboard_moves_through_threads_filters_and_sends_messages(
        browser: Browser, server: TestServer, sdk: openai.AsyncOpenAI) -> None:
    older = await sdk.beta.threads.create(metadata={"title": "Apples"})
    newer = await sdk.beta.threads.create(metadata={"title": "Bananas"})
    if (newer.created_at, newer.id) < (older.created_at, older.id):
        older, newer = newer, older  # same second: the list breaks ties by id
    page = await browser.open(server)
    title = page.locator("#thread-title")
    await page.keyboard.press("j")
    await expect(title).to_have_text(newer.metadata["title"])  # type: ignore[index]
    await page.keyboard.press("j")
    await expect(title).to_have_text(older.metadata["title"])  # type: ignore[index]
    await page.keyboard.press("k")
    await expect(title).to_have_text(newer.metadata["title"])  # type: ignore[index]

    await page.keyboard.press("/")
    await expect(page.locator("#filter")).to_be_focused()
    await page.keyboard.type(older.metadata["title"][:3])  # type: ignore[index]
    await expect(page.locator("#threads li:visible")).to_have_count(1)
    await page.keyboard.press("Escape")
    await expect(page.locator("#threads li:visible")).to_have_count(2)
    await expect(page.locator("#threads")).to_be_focused()

    await page.keyboard.press("Enter")
    await expect(page.locator("#draft")).to_be_focused()
    await page.keyboard.type("line one")
    await page.keyboard.press("Shift+Enter")
    await page.keyboard.type("line two")
    await page.keyboard.press("Enter")
    await expect(messages(page)).to_have_count(1, timeout=WAIT_MS)
    await expect(page.locator("#draft")).to_have_value("")
    sent = (await sdk.beta.threads.messages.list(newer.id)).data
    assert [(m.role, m.content[0].text.value) for m in sent] == [  # type: ignore[union-attr]
        ("user", "line one\nline two")]
    await expect(message(page, sent[0].id).locator(".m-text")).to_have_text("line one\nline two")


async def test_the_stream_resumes_after_a_server_restart_without_gaps_or_duplicates(
        browser: Browser, aiohttp_server: Any, make_config: Callable[..., Config],
        data_dir: Path) -> None:
    port = free_port()
    server = await aiohttp_server(create_app(make_config()), port=port)
    async with client_for(server) as sdk:
        thread = await sdk.beta.threads.create(messages=[{"role": "user", "content": "before"}])
        page = await browser.open(server, f"/#{thread.id}")
        live = await sdk.beta.threads.messages.create(thread.id, role="assistant", content="live")
        await expect(message(page, live.id)).to_have_count(1, timeout=WAIT_MS)
        first = (await sdk.beta.threads.messages.list(thread.id, order="asc")).data[0]

    await server.close()
    await expect(page.locator("#status")).to_have_attribute("data-state", "reconnecting",
                                                            timeout=WAIT_MS)
    folder = data_dir / "threads" / thread.id
    await append_from_another_process(folder, 3, "down_")
    remove_line(folder / "messages.jsonl", first.id)  # as Jan deletes: the file is rewritten
    server = await aiohttp_server(create_app(make_config()), port=port)
    await expect(page.locator("#status")).to_have_attribute("data-state", "live",
                                                            timeout=WAIT_MS * 2)
    for i in range(3):
        await expect(message(page, f"down_{i}")).to_have_count(1, timeout=WAIT_MS)
    await expect(message(page, first.id)).to_have_count(0, timeout=WAIT_MS)
    async with client_for(server) as sdk:
        after = await sdk.beta.threads.messages.create(thread.id, role="user", content="after")
    await expect(message(page, after.id)).to_have_count(1, timeout=WAIT_MS)
    ids = await messages(page).evaluate_all("nodes => nodes.map(n => n.dataset.id)")
    assert ids == [live.id, "down_0", "down_1", "down_2", after.id]  # in order, each once


async def test_narrow_window_dark_scheme_and_screenshot(
        browser: Browser, server: TestServer, sdk: openai.AsyncOpenAI, tmp_path: Path) -> None:
    chat = [("user", "What does Threadline do?"),
            ("assistant", "It serves your Jan threads as an OpenAI-compatible API, and this page "
                          "follows them live: new messages from the API, the Jan app or any "
                          "script appear here as they are written."),
            ("user", "Even <b>markup</b>?"),
            ("assistant", "Shown as text, never run: <b>markup</b> stays <b>markup</b>.")]
    for title in ("Trip planning", "Recipe ideas"):
        await sdk.beta.threads.create(metadata={"title": title},
                                      messages=[{"role": "user", "content": title}])
    thread = await sdk.beta.threads.create(metadata={"title": "About Threadline"}, messages=[
        {"role": role, "content": text} for role, text in chat])
    page = await browser.open(server, f"/#{thread.id}")
    await expect(messages(page)).to_have_count(len(chat), timeout=WAIT_MS)
    await expect(page.locator(f'#threads li[data-id="{thread.id}"] .t-count')).to_have_text(
        "4 messages", timeout=WAIT_MS)
    shot = tmp_path / "screenshot.png"
    await page.screenshot(path=str(shot))
    assert shot.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert shot.stat().st_size < 300_000
    if os.environ.get("THREADLINE_UPDATE_SCREENSHOT"):
        SCREENSHOT.parent.mkdir(exist_ok=True)
        shutil.copyfile(shot, SCREENSHOT)

    await page.emulate_media(color_scheme="dark")
    background = await page.evaluate("getComputedStyle(document.body).backgroundColor")
    assert background == "rgb(22, 24, 28)"

    await page.set_viewport_size({"width": 400, "height": 700})
    await expect(page.locator("#sidebar")).to_be_hidden()  # the open thread takes the window
    await page.click("#back")
    await expect(page.locator("#sidebar")).to_be_visible()
    await expect(page.locator("#pane")).to_be_hidden()
    await page.click(f'#threads li[data-id="{thread.id}"]')
    await expect(page.locator("#pane")).to_be_visible()
