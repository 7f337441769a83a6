"""The Neovim plugin end to end: a real headless Neovim types prose, gets ghost text from the server, accepts it.

Neovim is driven over its RPC socket (`--server ... --remote-expr`), and keys go in with `nvim_input`,
the same queue a user's typing goes through, so insert mode, the debounce and TextChangedI are real.
`make install` installs Neovim where it can; without it this test is skipped.
"""

import json
import re
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from assistant.generation import SENTENCE_END, load_model
from assistant.samples.store import Store

from .conftest import ROOT

NVIM = shutil.which("nvim")
PROSE = "The robot looked at the man for a long time. Then it said that the door was open, and"

pytestmark = pytest.mark.skipif(NVIM is None, reason="nvim is not installed and `make install` could not install it "
                                                     "(it needs apt-get as root or passwordless sudo)")


def wait_for(what: Callable[[], Any], timeout: float = 60) -> Any:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        found = what()
        if found:
            return found
        time.sleep(0.1)
    raise AssertionError(f"timed out waiting for {what.__doc__ or what}")


class Neovim:
    """A headless Neovim with the plugin set up for `settings`, driven over its RPC socket."""

    def __init__(self, tmp_path: Path, settings: dict):
        init = tmp_path / "init.lua"
        init.write_text(
            f"vim.opt.runtimepath:prepend({json.dumps(str(ROOT / 'plugins' / 'nvim'))})\n"
            f"require('ghostwriter').setup({{ cmd = {{ {json.dumps(sys.executable)}, '-m', 'assistant', 'lsp' }},"
            f" settings = vim.fn.json_decode({json.dumps(json.dumps(settings))}), debounce_ms = 100 }})\n"
        )
        story = tmp_path / "story.txt"
        story.write_text(PROSE + "\n")
        self.socket = Path(tempfile.mkdtemp(prefix="nvim-")) / "socket"  # a socket's path must be short (108 bytes)
        self.process = subprocess.Popen([NVIM, "--headless", "-i", "NONE", "-u", str(init), "--listen", str(self.socket),
                                         str(story)], cwd=tmp_path, stdin=subprocess.DEVNULL)

    def ask(self, expression: str) -> str:
        answer = subprocess.run([NVIM, "--server", str(self.socket), "--remote-expr", expression], capture_output=True,
                                text=True, timeout=30)
        return answer.stdout + answer.stderr  # Neovim 0.7 prints the value on stderr, later ones on stdout

    def lua(self, expression: str) -> Any:
        """The value of a Lua expression, through JSON."""
        return json.loads(self.ask(f"json_encode(luaeval({json.dumps(expression)}))"))

    def text(self) -> str:
        """the buffer's text"""
        return self.lua("table.concat(vim.api.nvim_buf_get_lines(0, 0, -1, false), '\\n')")

    def ghost(self) -> str:
        """ghost text on show"""
        return self.lua("require('ghostwriter').visible()")

    def ready(self) -> bool:
        """the server started and initialized"""
        return self.ask("luaeval('require(\"ghostwriter\").ready()')") in ("true", "v:true")

    def __enter__(self) -> "Neovim":
        try:
            wait_for(self.socket.exists, 30)
            wait_for(self.ready)
        except AssertionError:
            self.process.kill()
            raise
        return self

    def __exit__(self, kind: type | None, *rest: object) -> None:
        if kind is AssertionError:
            print("Neovim's messages:", self.ask("execute('messages')"))
        if self.process.poll() is None:
            self.process.kill()


def test_neovim_shows_the_suggestion_as_ghost_text_and_tab_accepts_it(trained_model: Path, tmp_path: Path):
    settings = {"model": str(trained_model), "temperature": 0, "autoChars": 40}
    with Neovim(tmp_path, settings) as nvim:
        ask, ghost, editor = nvim.ask, nvim.ghost, nvim.process
        ask('nvim_input("A the")')  # typed in insert mode at the end of the line

        shown = wait_for(ghost)
        expected = load_model(trained_model, "cpu").generate(PROSE + " the", max_new_chars=40, temperature=0, stop="\n")
        end = SENTENCE_END.search(expected)
        assert shown == (expected[: end.end()] if end else expected)
        assert ask("getline(1)") == PROSE + " the"  # ghost text is not text

        ask('nvim_input("<Tab>")')

        def accepted() -> bool:
            """the buffer holding the accepted continuation"""
            return ask("getline(1)") == PROSE + " the" + shown

        wait_for(accepted, 10)
        assert ghost() == ""

        def recorded() -> list[dict]:
            """the accepted event in the store"""
            with Store() as store:
                events = store.editor_events()
            # the next suggestion, asked for once the accepted text is in, may already be shown after these two
            return events if [e["event"] for e in events][:2] == ["shown", "accepted"] else []

        events = wait_for(recorded, 20)
        with Store() as store:
            sample = store.get(events[1]["sample_id"])
        assert sample.source == "editor" and sample.text == shown and sample.prompt == PROSE + " the"

        ask('nvim_input(" and")')  # Alt-Right takes the next word and leaves the rest on show
        second = wait_for(ghost)
        before = ask("getline(1)")
        word = re.match(r"\s*\S+", second)[0]
        ask('nvim_input("<M-Right>")')
        wait_for(lambda: ask("getline(1)") == before + word, 10)
        time.sleep(1)  # past the debounce: a new request would have cleared or replaced what is on show
        assert ghost() == second[len(word):]

        ask('nvim_input("<Esc>:GhostwriterSuggest<CR>")')  # normal mode: the cursor is on the line's last character
        line = ask("getline(1)")
        expected = load_model(trained_model, "cpu").generate(line, max_new_chars=160, temperature=0, stop="\n")
        end = SENTENCE_END.search(expected)
        suggestion = wait_for(ghost)
        assert suggestion == (expected[: end.end()] if end else expected)  # it continues the whole line
        ask('nvim_input("a<Tab>")')  # append where the suggestion stands, and take it
        wait_for(lambda: ask("getline(1)") == line + suggestion, 10)
        ask('nvim_input("<Esc>:GhostwriterSuggest<CR>")')
        line = ask("getline(1)")
        wait_for(ghost)
        ask('nvim_input(":GhostwriterUnconditional<CR>")')
        wait_for(lambda: ask("line('$')") != "1" or ask("getline(1)") != line, 30)
        assert ghost() == ""  # the suggestion no longer fits the text
        ask('nvim_input("<Esc>:qa!<CR>")')
        assert editor.wait(timeout=20) == 0


COUNTER = "(function() local marks = vim.api.nvim_buf_get_extmarks(0, " \
    "vim.api.nvim_create_namespace('ghostwriter'), 0, -1, { details = true }); local d = marks[1] and marks[1][4] or {}; " \
    "local chunks = vim.list_extend(vim.deepcopy(d.virt_text or {}), d.virt_lines and d.virt_lines[#d.virt_lines] or {}); " \
    "return chunks[#chunks] and chunks[#chunks][1] or '' end)()"  # the last piece of ghost text on show


def test_neovim_cycles_through_alternatives_and_accepts_the_one_shown(trained_model: Path, tmp_path: Path):
    settings = {"model": str(trained_model), "temperature": 1.5, "autoChars": 20, "maxChars": 40, "stopAt": "length",
                "alternatives": 3}
    with Neovim(tmp_path, settings) as nvim:
        nvim.ask('nvim_input("A the")')
        first = wait_for(nvim.ghost)
        assert len(first) == 20 and nvim.lua(COUNTER) == first.split("\n")[-1]  # one suggestion: no "k/n"

        def showing(k: int) -> str:
            """what is on show once the counter says k/4"""
            wait_for(lambda: nvim.lua(COUNTER).strip() == f"{k}/4", 30)
            return nvim.ghost()

        texts = {1: first}
        for key, k in (("<M-]>", 2), ("<M-]>", 3), ("<M-[>", 2), ("<M-[>", 1), ("<M-[>", 4), ("<M-]>", 1), ("<M-]>", 2)):
            nvim.ask(f'nvim_input("{key}")')  # the first press asks the server for 3 alternatives
            assert texts.setdefault(k, showing(k)) == showing(k)
        assert len(set(texts.values())) == 4 and texts[1] == first
        assert all(len(texts[k]) == 40 for k in (2, 3, 4)), texts  # the invoked request's length
        assert nvim.text() == PROSE + " the"  # cycling writes nothing

        word = re.match(r"\s*\S+", texts[2])[0]  # Alt-Right takes a word of the alternative on show
        nvim.ask('nvim_input("<M-Right>")')
        wait_for(lambda: nvim.text() == PROSE + " the" + word, 10)
        assert nvim.ghost() == texts[2][len(word):] and nvim.lua(COUNTER) == texts[2][len(word):].split("\n")[-1]  # no "k/n"
        nvim.ask('nvim_input("<Tab>")')
        wait_for(lambda: nvim.text() == PROSE + " the" + texts[2], 10)

        def recorded() -> list[dict]:
            """the alternative's acceptance in the store"""
            with Store() as store:
                return [e for e in store.editor_events() if e["event"] == "accepted"]

        [accepted] = wait_for(recorded, 20)
        with Store() as store:
            events = store.editor_events()
            sample = store.get(accepted["sample_id"])
        assert accepted["text"] == texts[2] and sample.text == texts[2] and sample.prompt == PROSE + " the"
        before = events[: [e["event"] for e in events].index("accepted")]  # the next suggestion may be shown after it
        assert sorted(e["text"] for e in before if e["event"] == "shown") == sorted(texts.values())  # each told once
        assert [e["event"] for e in events if e["suggestion"] == accepted["suggestion"]] == ["shown", "partial", "accepted"]
