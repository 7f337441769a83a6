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


def test_neovim_shows_the_suggestion_as_ghost_text_and_tab_accepts_it(trained_model: Path, tmp_path: Path):
    settings = {"model": str(trained_model), "temperature": 0, "autoChars": 40}
    init = tmp_path / "init.lua"
    init.write_text(
        f"vim.opt.runtimepath:prepend({json.dumps(str(ROOT / 'plugins' / 'nvim'))})\n"
        f"require('ghostwriter').setup({{ cmd = {{ {json.dumps(sys.executable)}, '-m', 'assistant', 'lsp' }},"
        f" settings = vim.fn.json_decode({json.dumps(json.dumps(settings))}), debounce_ms = 100 }})\n"
    )
    story = tmp_path / "story.txt"
    story.write_text(PROSE + "\n")
    socket = Path(tempfile.mkdtemp(prefix="nvim-")) / "socket"  # a socket's path must be short (108 bytes)
    editor = subprocess.Popen([NVIM, "--headless", "-i", "NONE", "-u", str(init), "--listen", str(socket), str(story)],
                              cwd=tmp_path, stdin=subprocess.DEVNULL)

    def ask(expression: str) -> str:
        answer = subprocess.run([NVIM, "--server", str(socket), "--remote-expr", expression], capture_output=True,
                                text=True, timeout=30)
        return answer.stdout + answer.stderr  # Neovim 0.7 prints the value on stderr, later ones on stdout

    try:
        wait_for(socket.exists, 30)

        def ready() -> bool:
            """the server started and initialized"""
            return ask("luaeval('require(\"ghostwriter\").ready()')") in ("true", "v:true")

        wait_for(ready)
        ask('nvim_input("A the")')  # typed in insert mode at the end of the line

        def ghost() -> str:
            """ghost text on show"""
            return ask("luaeval('require(\"ghostwriter\").visible()')")

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
    except AssertionError:
        print("Neovim's messages:", ask("execute('messages')"))
        raise
    finally:
        if editor.poll() is None:
            editor.kill()
