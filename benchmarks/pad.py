"""The writing pad in headless Chromium on a CPU: from the last keystroke to the ghost text, and typing in a novel.

- Ghost text: the pad at `/` of `assistant serve` (the real command, a
  subprocess), a new document, one character typed at a time; for each,
  the time from the key's event to the ghost text in the page, less the
  pause the pad waits after typing (its default, 250 ms). p50 and p95 over
  the keystrokes, for the char `small` model (bars: p50 <= 150 ms, p95 <=
  300 ms) and, with --models gpt2, GPT-2 small's shape in int8. Baseline in
  the same run: the time to the first piece of the same continuation (the
  same prompt and length) through the streaming /v1/completions route, so
  the ratio is what the page, its request and its events cost over the
  model's own first token. Each model types into a document of its own
  (`ghost-char.md`, ...), then at the end of a 100,000-word one
  (`novel-char.md`): the second is the cost of a long document's context,
  which the pad sends from a start that moves in steps so the server reads
  only the new words.
- Typing in a manuscript: a 100,000-word document (PKD's stories, over and
  over) opened in the pad, 200 characters typed at its end; for each, the
  time in the page from the key's event to the text changed and laid out
  (the editor's position of the cursor read back, which forces the layout).
  Bar: <= 16 ms per keystroke. Baseline: the same in a plain <textarea>
  holding the same text, in the same page.

    .venv/bin/python benchmarks/pad.py
    .venv/bin/python benchmarks/pad.py --models char gpt2 --keys 60 --json docs/figures/pad.json
"""

import argparse
import json
import shutil
import statistics
import time
from pathlib import Path

from _common import SHARED_CORPORA, add_json_option, emit, gpt2_small, setup
from serve import char_small, percentile, server

PAUSE_MS = 250  # the pad's default pause before it asks
WORDS = 100_000
FIGURES = {
    **{f"{m}.{k}": f"{m}: {what}" for m in ("char", "gpt2") for k, what in (
        ("ghost_p50_ms", "ms from the last keystroke to ghost text in the page, past the pause, median"),
        ("ghost_p95_ms", "the same, 95th percentile"),
        ("first_piece_p50_ms", "ms to the first piece of the same continuation through /v1/completions, median"),
        ("ratio", "the pad's p50 over the API's first piece"),
        ("novel_ghost_p50_ms", "the pad's ms to ghost text at the end of the 100,000-word manuscript, median"),
        ("novel_ghost_p95_ms", "the same, 95th percentile"))},
    "manuscript.words": "words in the manuscript typed into",
    "manuscript.open_ms": "ms to open it in the page (request, editor state, first layout)",
    "manuscript.key_p50_ms": "ms per keystroke at its end in the pad, median",
    "manuscript.key_p95_ms": "the same, 95th percentile",
    "manuscript.textarea_p50_ms": "ms per keystroke in a plain textarea holding the same text, median",
    "manuscript.ratio": "the pad's median over the textarea's",
}
# Marks each keystroke's time and when ghost text comes on screen; the ghost's time is read when it changes.
WATCH = """
window.bench = {keys: [], ghosts: []};
document.addEventListener("keydown", (e) => bench.keys.push(e.timeStamp), true);
new MutationObserver(() => {
  const g = document.querySelector(".ghost");
  if (g && g.textContent && !bench.seen) { bench.ghosts.push(performance.now()); bench.seen = true; }
  if (!g) bench.seen = false;
}).observe(document.querySelector("#editor"), {childList: true, subtree: true, characterData: true});
"""
# The time from each key's event to its text in the document and laid out, for the pad's editor or a textarea.
KEYCOST = """
window.costs = [];
const target = arguments[0];
target.addEventListener("keydown", (e) => {
  const t0 = e.timeStamp;
  setTimeout(() => {
    const plain = document.querySelector("#plain");
    if (plain) plain.scrollHeight; else pad.view.coordsAtPos(pad.view.state.selection.main.head);
    costs.push(performance.now() - t0);
  }, 0);
}, true);
"""


def browser():
    from selenium import webdriver

    options = webdriver.ChromeOptions()
    options.binary_location = shutil.which("chromium") or "/usr/bin/chromium"
    for argument in ("--headless=new", "--no-sandbox", "--disable-dev-shm-usage", "--window-size=1280,800"):
        options.add_argument(argument)
    return webdriver.Chrome(options=options, service=webdriver.ChromeService(executable_path=shutil.which("chromedriver")))


def ready(driver, url: str) -> float:
    """Open the pad at `url`; seconds until it has opened its document."""
    start = time.perf_counter()
    driver.get(url)
    while not driver.execute_script("return !!(window.pad && window.pad.ready)"):
        time.sleep(0.005)
    return time.perf_counter() - start


def ghost_latency(driver, base: str, http, keys: int, document: str) -> list[float]:
    """ms from each keystroke to ghost text, past the pause, at the end of `document` (made empty when missing):
    a character typed, the ghost awaited, the next."""
    from selenium.webdriver.common.by import By

    if document not in [d["name"] for d in http.get("/pad/api/documents").json()["documents"]]:
        http.post("/pad/api/documents", json={"name": document}).raise_for_status()
    driver.get(base + "/health")
    driver.execute_script("localStorage.clear()")
    ready(driver, f"{base}/#{document}")
    assert driver.execute_script("return pad.name") == document
    driver.execute_script(WATCH)
    editor = driver.find_element(By.CSS_SELECTOR, ".cm-content")
    editor.send_keys("The robot looked at the man and said")
    found = []
    for i in range(keys + 2):  # the first two warm up
        before = len(driver.execute_script("return bench.ghosts"))
        editor.send_keys("abcdefghij"[i % 10] if i % 5 else " ")
        deadline = time.monotonic() + 30
        while len(driver.execute_script("return bench.ghosts")) == before:
            if time.monotonic() > deadline:
                said = driver.execute_script("return [document.querySelector('#status').textContent, pad.requests, "
                                             "pad.suggestion && pad.suggestion.choices.map(c => [c.text, c.done])]")
                raise SystemExit(f"no ghost text came within 30 s of keystroke {i} (the page's status, requests sent, "
                                 f"the suggestion's choices: {said!r})")
            time.sleep(0.005)
        key, shown = driver.execute_script("return [bench.keys[bench.keys.length - 1], bench.ghosts[bench.ghosts.length - 1]]")
        if i >= 2:
            found.append(shown - key - PAUSE_MS)
    return found


def first_piece_ms(http, prompt: str, chars: int, repeats: int) -> list[float]:
    """The API's time to the first piece of a continuation as long as the pad's, for the same prompt."""
    times = []
    for i in range(repeats):
        start, first = time.perf_counter(), None
        body = {"prompt": prompt + "abcdefghij"[i % 10], "max_tokens": chars, "stream": True, "seed": i}
        with http.stream("POST", "/v1/completions", json=body) as answer:
            for line in answer.iter_lines():
                if first is None and line.startswith("data: {") and json.loads(line[6:])["choices"][0]["text"]:
                    first = time.perf_counter() - start
        times.append(first * 1e3)
    return times


def manuscript_text() -> str:
    """PKD's stories, over and over, to WORDS words."""
    words = " ".join((SHARED_CORPORA / "pkd" / name).read_text(errors="replace") for name in
                     sorted(p.name for p in (SHARED_CORPORA / "pkd").glob("*.txt"))).split(" ")
    return " ".join((words * (WORDS // len(words) + 1))[:WORDS])


def manuscript(driver, base: str, http, keys: int) -> dict:
    """Open a 100,000-word manuscript and type at its end, in the pad and in a plain textarea."""
    from selenium.webdriver.common.by import By

    text = manuscript_text()
    http.put("/pad/api/documents/manuscript.md", json={"text": text}).raise_for_status()
    driver.get(base + "/health")
    driver.execute_script("localStorage.clear()")
    open_ms = ready(driver, base + "/#manuscript.md") * 1e3
    assert driver.execute_script("return pad.view.state.doc.length") == len(text)
    driver.execute_script("pad.settings.pause = 10 ** 9")  # no suggestions: the typing alone
    editor = driver.find_element(By.CSS_SELECTOR, ".cm-content")
    driver.execute_script(KEYCOST, editor)
    for i in range(keys):
        editor.send_keys("abcdefghij "[i % 11])
    pad = driver.execute_script("return costs")
    driver.execute_script("const t = document.createElement('textarea'); t.id = 'plain'; t.style.cssText = "
                          "'position:fixed;inset:0;width:100%;height:100%;font:20px Georgia'; t.value = arguments[0];"
                          "document.body.appendChild(t); t.focus(); t.setSelectionRange(t.value.length, t.value.length);",
                          text)
    plain = driver.find_element(By.ID, "plain")
    driver.execute_script(KEYCOST, plain)
    for i in range(keys):
        plain.send_keys("abcdefghij "[i % 11])
    textarea = driver.execute_script("return costs")
    p50, base50 = statistics.median(pad), statistics.median(textarea)
    return {"words": WORDS, "open_ms": round(open_ms, 1), "key_p50_ms": round(p50, 2),
            "key_p95_ms": round(percentile(pad, 95), 2), "textarea_p50_ms": round(base50, 2),
            "ratio": round(p50 / base50, 2) if base50 else None}


def screenshots(driver, base: str, http, folder: Path) -> None:
    """The pad with a suggestion showing, light and dark (docs/figures/pad-*.png): a short passage, a pause, the ghost."""
    from selenium.webdriver.common.by import By

    http.post("/pad/api/documents", json={"name": "story.md"}).raise_for_status()
    driver.get(base + "/health")
    driver.execute_script("localStorage.clear()")
    ready(driver, base + "/#story.md")
    driver.execute_script("pad.settings.n = 1; pad.settings.chars = 120; pad.settings.temperature = 0.6; pad.settings.seed = 3")
    editor = driver.find_element(By.CSS_SELECTOR, ".cm-content")
    editor.send_keys("The robot looked at the man for a long time. Then it said that the door was open, and the man")
    deadline = time.monotonic() + 60
    while not driver.execute_script("return pad.suggestion && pad.suggestion.choices[0].done") and time.monotonic() < deadline:
        time.sleep(0.05)
    for theme in ("light", "dark"):
        driver.execute_script(f"document.documentElement.dataset.theme = '{theme}'")
        driver.save_screenshot(str(folder / f"pad-{theme}.png"))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--models", nargs="+", default=["char"], choices=["char", "gpt2"])
    parser.add_argument("--keys", type=int, default=40, help="keystrokes measured for the ghost text")
    parser.add_argument("--threads", type=int, default=None)
    parser.add_argument("--char-model", help="serve this trained model as the char one (default: a char `small` model "
                                             "trained one step; the speed does not depend on its weights)")
    parser.add_argument("--screenshots", type=Path, metavar="FOLDER", help="also save pad-light.png and pad-dark.png here")
    add_json_option(parser)
    args = parser.parse_args()
    setup(args.threads)
    result: dict = {}
    driver = browser()
    try:
        for kind in args.models:
            model, quantize = (args.char_model or char_small(), "none") if kind == "char" else (gpt2_small(), "int8")
            with server(model, quantize=quantize) as served:
                base = str(served.http.base_url).rstrip("/")
                ghosts = ghost_latency(driver, base, served.http, args.keys, f"ghost-{kind}.md")
                api = first_piece_ms(served.http, "The robot looked at the man and said ", 60, args.keys)
                served.http.put(f"/pad/api/documents/novel-{kind}.md", json={"text": manuscript_text()}).raise_for_status()
                long = ghost_latency(driver, base, served.http, max(8, args.keys // 4), f"novel-{kind}.md")
                p50 = statistics.median(ghosts)
                result[kind] = {"ghost_p50_ms": round(p50, 1), "ghost_p95_ms": round(percentile(ghosts, 95), 1),
                                "first_piece_p50_ms": round(statistics.median(api), 1),
                                "ratio": round(p50 / statistics.median(api), 2),
                                "novel_ghost_p50_ms": round(statistics.median(long), 1),
                                "novel_ghost_p95_ms": round(percentile(long, 95), 1)}
                if kind == args.models[0]:
                    result["manuscript"] = manuscript(driver, base, served.http, 200)
                    if args.screenshots:
                        screenshots(driver, base, served.http, args.screenshots)
    finally:
        driver.quit()
    emit(result, FIGURES, args)


if __name__ == "__main__":
    main()
