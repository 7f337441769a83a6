"""The writing pad at `/` of `assistant serve`, in a real headless Chromium: one server and one browser for the module.

The browser is the system's (`apt-get install chromium chromium-driver`, as
`make install` does); the tests are skipped, saying so, only where it is not
installed. Each test has its own data directory (conftest's isolated_home),
so its own documents and sample store; the page's localStorage is cleared
before each. The models are the session's tiny char models: the PKD one as
the server's default, the parrot (which copies its corpus) by name.
"""

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


@pytest.fixture
def page(browser, server: str, isolated_home: Path):
    """The pad opened afresh on this test's data directory: an empty `untitled.md`."""
    browser.get(server + "/health")
    browser.execute_script("localStorage.clear()")
    browser.get(server + "/")
    wait_for(lambda: browser.execute_script("return !!(window.pad && window.pad.ready)"), 20)
    yield browser
    # saved now, into this test's data directory: not by the page's last save as it is left, into the next test's
    browser.execute_async_script("pad.save().then(arguments[0])")
    browser.get("about:blank")


def js(browser, script: str):
    return browser.execute_script("return " + script)


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


START = "The robot looked at the man and"


def test_typing_brings_ghost_text_and_tab_writes_it_into_the_file_and_the_store(page, isolated_home: Path):
    from selenium.webdriver.common.keys import Keys

    type_in(page, START)
    shown = wait_for(lambda: ghost(page))
    settle(page)
    shown = ghost(page)
    press(page, Keys.TAB)
    assert text(page) == START + shown and ghost(page) == ""
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
    js(page, "(pad.settings.n = 1, pad.settings.chars = 4000)")
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
