"""The writing pad at `/` of `assistant serve`, in a real headless Chromium: one server and one browser for the module.

The browser is the system's (`apt-get install chromium chromium-driver`, as
`make install` does); the tests are skipped, saying so, only where it is not
installed. Each test has its own data directory (conftest's isolated_home),
so its own documents and sample store; the page's localStorage is cleared
before each. The models are the session's tiny char models: the PKD one as
the server's default, the parrot (which copies its corpus) by name.
"""

import json
import shutil
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from assistant.api.pad import prompt
from assistant.samples.store import GHOSTWRITTEN, Store

from .test_serve import serving, wait_for

CHROMIUM = next(filter(None, map(shutil.which, ("chromium", "chromium-browser", "google-chrome"))), None)
DRIVER = shutil.which("chromedriver")


@pytest.fixture(scope="module")
def server(trained_model: Path) -> Iterator[str]:
    with serving(str(trained_model)) as (url, _):
        yield url


@pytest.fixture(scope="module")
def browser() -> Iterator:
    if CHROMIUM is None or DRIVER is None:
        pytest.skip("no Chromium and chromedriver on this machine: `make install` installs them with apt "
                    "(apt-get install chromium chromium-driver)")
    webdriver = pytest.importorskip("selenium.webdriver")
    options = webdriver.ChromeOptions()
    options.binary_location = CHROMIUM
    for argument in ("--headless=new", "--no-sandbox", "--disable-dev-shm-usage", "--window-size=1280,800",
                     "--disable-gpu", "--no-first-run"):
        options.add_argument(argument)
    driver = webdriver.Chrome(options=options, service=webdriver.ChromeService(executable_path=DRIVER))
    try:
        yield driver
    finally:
        driver.quit()


KEY = "s3cret"
CHAPTER = "Chapter One\n\nThe robot looked at the man."


@pytest.fixture(scope="module")
def own_folder(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A writer's own manuscript folder, outside the data directory."""
    folder = tmp_path_factory.mktemp("manuscript")
    (folder / "chapter-one.md").write_text(CHAPTER)
    return folder


@pytest.fixture(scope="module")
def keyed(trained_model: Path, own_folder: Path) -> Iterator[str]:
    """`assistant serve --api-key KEY --documents FOLDER`: a writer's own folder, behind a key."""
    with serving(str(trained_model), api_key=KEY, documents=str(own_folder)) as (url, _):
        yield url


def fresh(browser, url: str, key: str | None = None, ready: bool = True) -> None:
    """The pad at `url` with nothing in the browser's storage (but `key`, when given)."""
    browser.get(url + "/health")
    browser.execute_script("localStorage.clear(); if (arguments[0]) localStorage.setItem('pad.key', arguments[0])", key)
    browser.get(url + "/")
    if ready:
        wait_for(lambda: browser.execute_script("return !!(window.pad && window.pad.ready)"), 20)


@pytest.fixture
def page(browser, server: str, isolated_home: Path):
    """The pad opened afresh on this test's data directory: an empty `untitled.md`."""
    fresh(browser, server)
    yield browser
    # saved now, into this test's data directory: not by the page's last save as it is left, into the next test's
    browser.execute_async_script("pad.save().then(arguments[0])")
    browser.get("about:blank")


def js(browser, script: str, *arguments):
    return browser.execute_script("return " + script, *arguments)


def type_in(browser, text: str) -> None:
    from selenium.webdriver.common.by import By

    browser.find_element(By.CSS_SELECTOR, ".cm-content").send_keys(text)


def press(browser, *keys: str, alt: bool = False, ctrl: bool = False, shift: bool = False) -> None:
    from selenium.webdriver.common.action_chains import ActionChains
    from selenium.webdriver.common.keys import Keys

    chain = ActionChains(browser)
    held = [k for k, on in ((Keys.CONTROL, ctrl), (Keys.ALT, alt), (Keys.SHIFT, shift)) if on]
    for key in held:
        chain = chain.key_down(key)
    chain = chain.send_keys(*keys)
    for key in reversed(held):
        chain = chain.key_up(key)
    chain.perform()


def ghost(browser) -> str:
    return js(browser, "document.querySelector('.ghost') ? document.querySelector('.ghost').textContent : ''")


def text(browser) -> str:
    return js(browser, "pad.view.state.doc.toString()")


def samples() -> list:
    with Store() as store:
        return store.find(oldest_first=True)


def settle(browser) -> None:
    """Until every choice of the suggestion showing has ended."""
    wait_for(lambda: js(browser, "pad.suggestion && pad.suggestion.choices.every(c => c.done)"))


def take_suggestion(browser, typed: str) -> str:
    """Type `typed` at the end, wait for the whole suggestion and Tab: what was taken, now after what was typed."""
    from selenium.webdriver.common.keys import Keys

    before = text(browser)
    type_in(browser, typed)
    wait_for(lambda: ghost(browser))
    settle(browser)
    taken = ghost(browser)
    press(browser, Keys.TAB)
    assert taken and text(browser) == before + typed + taken and ghost(browser) == ""
    return taken


START = "The robot looked at the man and"


def test_typing_brings_ghost_text_and_tab_writes_it_into_the_file_and_the_store(page, isolated_home: Path):
    shown = take_suggestion(page, START)
    saved = isolated_home / "documents" / "untitled.md"
    wait_for(lambda: saved.is_file() and saved.read_text() == START + shown)
    [accepted] = wait_for(lambda: [s for s in samples() if GHOSTWRITTEN in s.tags])
    assert accepted.text == shown and accepted.source == "pad" and accepted.prompt.endswith(START)
    assert "untitled.md" in accepted.tags
    share = round(100 * len(shown) / len(START + shown))
    assert js(page, "document.querySelector('#share').textContent") == f"model wrote {share}%"


def test_ctrl_right_takes_one_word_and_the_part_taken_is_stored(page):
    from selenium.webdriver.common.keys import Keys

    js(page, "(pad.settings.n = 1, pad.settings.chars = 40)")
    type_in(page, START)
    wait_for(lambda: ghost(page))
    settle(page)
    whole = js(page, "pad.suggestion.choices[0].text")
    press(page, Keys.ARROW_RIGHT, ctrl=True)
    word = text(page)[len(START):]
    assert word and whole.startswith(word) and len(word) < len(whole) and ghost(page) == whole[len(word):]
    press(page, Keys.ESCAPE)
    assert ghost(page) == ""
    [part] = wait_for(lambda: [s for s in samples() if GHOSTWRITTEN in s.tags])
    assert part.text == word and part.params["accepted_from"] != part.id


def test_typing_on_cancels_the_request_in_flight(page):
    # eight of the longest suggestions, one after the other: seconds of work, still in flight however slow the browser
    js(page, "(pad.settings.n = 8, pad.settings.chars = 4000)")
    type_in(page, START)
    wait_for(lambda: ghost(page))
    type_in(page, " she")
    assert ghost(page) == ""
    cancelled = wait_for(lambda: [s for s in samples() if s.cancelled])
    assert cancelled[0].source == "pad" and cancelled[0].prompt == START and 0 < len(cancelled[0].text) < 4000


def test_alt_bracket_shows_another_alternative_and_undo_redo_restore_the_text(page):
    from selenium.webdriver.common.keys import Keys

    type_in(page, START)
    wait_for(lambda: ghost(page))
    settle(page)
    choices = js(page, "pad.suggestion.choices.map(c => c.text)")
    assert len(choices) == 3 and len(set(choices)) > 1
    first = ghost(page)
    assert first == choices[0]
    press(page, "]", alt=True)
    assert ghost(page) == choices[1]
    press(page, "[", alt=True)
    press(page, "[", alt=True)
    assert ghost(page) == choices[2]
    press(page, Keys.TAB)
    assert text(page) == START + choices[2]
    press(page, "z", ctrl=True)
    assert text(page) == START
    press(page, "z", ctrl=True, shift=True)
    assert text(page) == START + choices[2]
    assert js(page, "pad.written()") == [[len(START), len(START + choices[2])]]  # marked as the model's again


def test_a_suggestion_that_copies_the_corpus_is_marked_with_the_work_it_comes_from(page, isolated_home: Path,
                                                                                   parrot: Path):
    (isolated_home / "models").mkdir(parents=True, exist_ok=True)
    (isolated_home / "models" / "parrot").symlink_to(parrot)
    js(page, "(pad.settings.model = 'parrot', pad.settings.n = 1, pad.settings.chars = 150, pad.settings.temperature = 0)")
    type_in(page, "The robot walked into the kitchen")
    wait_for(lambda: js(page, "!!document.querySelector('.ghost.copies')"))
    status = js(page, "document.querySelector('#status').textContent")
    assert "copies" in status and "parrot.txt" in status


def test_reloading_the_page_keeps_the_document(page, isolated_home: Path):
    type_in(page, "It was a dark night.\nThe second line")
    wait_for(lambda: js(page, "pad.saves > 0"))
    page.refresh()
    wait_for(lambda: js(page, "!!(window.pad && window.pad.ready)"))
    assert text(page) == "It was a dark night.\nThe second line"
    assert js(page, "pad.name") == "untitled.md"


def test_hovering_a_word_the_model_wrote_shows_its_alternatives_and_clicking_one_writes_on_from_it(page):
    from selenium.webdriver.common.action_chains import ActionChains
    from selenium.webdriver.common.by import By

    js(page, "(pad.settings.n = 1, pad.settings.chars = 30, pad.settings.long = 40)")
    taken = take_suggestion(page, START)
    word = page.find_elements(By.CSS_SELECTOR, ".cm-content .w")[2]  # the model's third token
    at = js(page, "pad.view.posAtDOM(arguments[0])", word) - len(START)
    ActionChains(page).move_to_element(word).perform()
    shown = wait_for(lambda: page.find_elements(By.CSS_SELECTOR, ".cm-tooltip-hover .alternatives button"))
    listed = [(b.find_elements(By.TAG_NAME, "span")[0].text, b.find_element(By.CLASS_NAME, "p").text) for b in shown]
    assert 2 <= len(listed) <= 5 and all(p.endswith("%") and 0 <= float(p[:-1]) <= 100 for _, p in listed)
    assert [float(p[:-1]) for _, p in listed] == sorted((float(p[:-1]) for _, p in listed), reverse=True)
    other = next(b for b in shown if "chosen" not in b.get_attribute("class"))
    alternative = other.get_attribute("data-text")
    other.click()
    wait_for(lambda: js(page, "pad.continuation && !pad.writing"))
    # the rest of the suggestion gone, the alternative in its place, and written on from there
    head = START + taken[:at] + alternative
    assert js(page, "pad.continuation.from") == len(head)
    assert text(page) == head + js(page, "pad.continuation.branches[0].text") and len(text(page)) > len(head)


def test_ctrl_enter_streams_a_continuation_and_retry_keeps_the_old_one_as_a_branch(page):
    from selenium.webdriver.common.keys import Keys

    # no ghost text: the continuation alone, greedy (the tiny model says "the" to the length: 200 chars, no early end)
    js(page, "(pad.settings.long = 200, pad.settings.pause = 10 ** 6, pad.settings.temperature = 0)")
    type_in(page, START)
    page.execute_script("""window.seen = new Set(); new MutationObserver(() => {
      const g = document.querySelector('.ghost.writing'); if (g) seen.add(g.textContent);
    }).observe(document.querySelector('#editor'), {childList: true, subtree: true, characterData: true});""")
    press(page, Keys.ENTER, ctrl=True)
    wait_for(lambda: js(page, "pad.continuation && !pad.writing"))
    first = text(page)[len(START):]
    assert len(first) > 100 and js(page, "seen.size") > 1  # it came in piece by piece before it was written in
    assert all(first.startswith(piece) for piece in js(page, "[...seen]"))
    js(page, "pad.settings.temperature = 1")  # the retry sampled: another text
    press(page, "r", alt=True)
    wait_for(lambda: js(page, "pad.continuation && pad.continuation.branches.length == 2 && !pad.writing"))
    second = text(page)[len(START):]
    assert second != first and js(page, "document.querySelector('#branches').textContent").startswith("branch 2 of 2")
    press(page, Keys.ARROW_UP, alt=True)
    assert text(page) == START + first and js(page, "pad.written()") == [[len(START), len(START + first)]]
    press(page, Keys.ARROW_DOWN, alt=True)
    assert text(page) == START + second
    samples_written = [s.text for s in samples() if s.source == "pad"]
    assert first in samples_written and second in samples_written


def test_with_a_key_the_page_asks_for_it_once_and_sends_it(browser, keyed: str, own_folder: Path):
    from selenium.webdriver.common.by import By

    assert httpx.get(keyed + "/").status_code == 200 and httpx.get(keyed + "/pad/static/pad.js").status_code == 200
    assert httpx.get(keyed + "/pad/api/documents").status_code == 401
    assert httpx.post(keyed + "/pad/api/write", json={"document": "x", "before": "a"}).status_code == 401
    fresh(browser, keyed, ready=False)
    for key in ("wrong", KEY):
        wait_for(lambda: js(browser, "!document.querySelector('#key').hidden"))
        browser.find_element(By.ID, "key-input").send_keys(key)
        browser.find_element(By.ID, "key-use").click()
    assert "refused" in js(browser, "document.querySelector('#key-why').textContent")
    wait_for(lambda: js(browser, "!!(window.pad && window.pad.ready)"))
    assert js(browser, "pad.name") == "chapter-one.md" and js(browser, "document.querySelector('#key').hidden")
    assert js(browser, "document.querySelector('#model').options.length") == 2  # /v1/models answered, with the key
    browser.refresh()  # the browser keeps the key: not asked again
    wait_for(lambda: js(browser, "!!(window.pad && window.pad.ready)"))
    assert js(browser, "document.querySelector('#key').hidden")
    browser.get("about:blank")


def test_documents_folder_of_the_writers_own_is_opened_edited_and_saved_back(browser, keyed: str, own_folder: Path):
    fresh(browser, keyed, key=KEY)
    assert js(browser, "[...document.querySelector('#documents').options].map(o => o.value)") == ["chapter-one.md"]
    assert text(browser) == CHAPTER
    taken = take_suggestion(browser, " Then it")
    saved = own_folder / "chapter-one.md"
    wait_for(lambda: saved.read_text() == CHAPTER + " Then it" + taken)
    record = own_folder / ".ghostwriter" / "chapter-one.md.json"  # the marks of what the model wrote, beside it
    wait_for(lambda: record.is_file() and [len(CHAPTER + " Then it"), len(saved.read_text())] in
             json.loads(record.read_text())["written"])
    browser.get("about:blank")


def test_on_a_phone_the_page_fits_its_width_and_the_editor_works(page):
    from selenium.webdriver.common.by import By

    page.execute_cdp_cmd("Emulation.setDeviceMetricsOverride", {"width": 390, "height": 844, "deviceScaleFactor": 3,
                                                                 "mobile": True})
    try:
        page.refresh()
        wait_for(lambda: js(page, "!!(window.pad && window.pad.ready)"))
        assert js(page, "innerWidth") == 390
        assert js(page, "document.documentElement.scrollWidth") <= 390  # no horizontal scroll
        shown = [e for e in page.find_elements(By.CSS_SELECTOR, "header > *, footer > *, #editor") if e.is_displayed()]
        assert all(e.rect["x"] >= 0 and e.rect["x"] + e.rect["width"] <= 390 for e in shown)
        editor = page.find_element(By.CSS_SELECTOR, ".cm-content").rect
        assert editor["width"] >= 340 and editor["y"] < 200  # the column is most of the screen, near its top
        take_suggestion(page, START)
        assert js(page, "document.documentElement.scrollWidth") <= 390  # the suggestion wraps: still no scroll
        page.find_element(By.ID, "settings-toggle").click()
        panel = page.find_element(By.ID, "settings").rect
        assert panel["x"] >= 0 and panel["x"] + panel["width"] <= 390
    finally:
        page.execute_cdp_cmd("Emulation.clearDeviceMetricsOverride", {})


# ---- the routes themselves --------------------------------------------------------------------------------------
def test_documents_are_listed_created_renamed_and_refused_by_bad_names(server: str, isolated_home: Path):
    with httpx.Client(base_url=server) as http:
        assert http.post("/pad/api/documents", json={"name": "chapter one"}).json() == {"name": "chapter one.md"}
        assert http.post("/pad/api/documents", json={"name": "chapter one.md"}).status_code == 400
        assert http.put("/pad/api/documents/chapter one.md", json={"text": "Once.", "record": {"memory": "A"}}).is_success
        assert http.post("/pad/api/documents/chapter one.md/rename", json={"to": "one.txt"}).json() == {"name": "one.txt"}
        found = http.get("/pad/api/documents/one.txt").json()
        assert (found["text"], found["record"]) == ("Once.", {"memory": "A"})
        assert [d["name"] for d in http.get("/pad/api/documents").json()["documents"]] == ["one.txt"]
        assert http.get("/pad/api/documents/missing.md").status_code == 404
        bad = http.post("/pad/api/documents", json={"name": ".hidden"})
        assert bad.status_code == 400 and "not a document name" in bad.json()["error"]["message"]
        assert http.post("/pad/api/write", json={"document": "x", "before": "a", "settings": {"temperature": -1}}
                         ).status_code == 400
    assert (isolated_home / "documents" / "one.txt").read_text() == "Once."


def test_the_memory_comes_first_and_the_authors_note_a_few_lines_before_the_cursor():
    assert prompt("", "a\nb", "") == "a\nb"
    assert prompt("Mem.\n", "one\ntwo\nthree\nfour", " dark ") == "Mem.\n\none\n[dark]\ntwo\nthree\nfour"
    assert prompt("", "short", "note") == "[note]\nshort"
