"""`assistant repl`: write with a model interactively.

A thin loop over the same generation API and store the CLI uses: type a
prompt (Enter sends it, Alt-Enter adds a line), watch the continuation
stream, Ctrl-C stops it (the partial text is stored, marked cancelled) and
Ctrl-D leaves. Lines that start with / are commands; /help lists them. A bad
command or value prints one line and the session goes on.
"""

from collections.abc import Callable, Iterator
from dataclasses import dataclass, replace

from prompt_toolkit import PromptSession
from prompt_toolkit.completion import Completer, Completion
from prompt_toolkit.document import Document
from prompt_toolkit.filters import is_searching
from prompt_toolkit.history import FileHistory
from prompt_toolkit.key_binding import KeyBindings
from rich.console import Console
from rich.markup import escape
from rich.text import Text

from corpora import UserError
from corpora.home import data_home
from kinds import modeldir

from .compare import compare
from .generation import Params, TextModel, load_model
from .samples.recording import check_stored, record
from .samples.store import GHOSTWRITTEN, Store
from .samples.views import check_view, sample_table, side_by_side, status_line
from .terminal import stream_to_stdout

HISTORY = "repl_history"
HELP = {
    "/model NAME": "write with another model (a name or a directory)",
    "/temperature T": "sampling temperature (0 is greedy)",
    "/length N": "characters per sample",
    "/top-k K": "sample from the K likeliest characters (off: all)",
    "/top-p P": "sample from the likeliest characters holding probability P (off: all)",
    "/n N": "samples per prompt",
    "/uncond": "an unconditional sample",
    "/again": "the last prompt again",
    "/compare MODEL [PROMPT]": "the last prompt (or PROMPT) through this model and MODEL, side by side",
    "/tag TAG...": "tag the last sample",
    "/ghostwrite": "tag the last sample ghostwritten and print it, ready to paste",
    "/check": "the longest passage the last sample copies from the corpus",
    "/history": "the last samples stored",
    "/help": "this list",
}
COMMANDS = [usage.split()[0] for usage in HELP]
KEYS = "Enter sends, Alt-Enter (or Esc Enter) adds a line, Ctrl-R searches the history, Ctrl-C stops, Ctrl-D leaves."


@dataclass
class Settings:
    max_new_chars: int = 500
    temperature: float = 0.8
    top_k: int | None = None
    top_p: float | None = None
    n: int = 1

    def generation(self) -> dict:
        return {"max_new_chars": self.max_new_chars, "temperature": self.temperature, "top_k": self.top_k,
                "top_p": self.top_p}


class Repl:
    def __init__(self, model: str | None, min_span: int):
        self.min_span = min_span  # samples copying this many characters of their corpus are flagged
        self.console = Console(highlight=False)
        self.models: dict[str, TextModel] = {}
        self.model = self._load(model or modeldir.newest())
        self.settings = Settings()
        self.last_prompt: str | None = None
        self.last_sample_id: int | None = None
        self.commands: dict[str, Callable[[str], None]] = {
            "/model": self.set_model, "/temperature": self.set_temperature, "/length": self.set_length,
            "/top-k": self.set_top_k, "/top-p": self.set_top_p, "/n": self.set_n, "/uncond": lambda _: self.write(""),
            "/again": self.again, "/compare": self.compare, "/tag": self.tag, "/ghostwrite": self.ghostwrite,
            "/check": self.check, "/history": self.history, "/help": self.help,
        }

    def run(self) -> None:
        home = data_home()
        home.mkdir(parents=True, exist_ok=True)
        session: PromptSession[str] = PromptSession(
            history=FileHistory(str(home / HISTORY)), multiline=True, key_bindings=_keys(),
            completer=SlashCompleter(), bottom_toolbar=self.toolbar, prompt_continuation="  ",
        )
        self.console.print(f"[bold]{escape(self.model.name)}[/bold] is ready. {KEYS} /help for commands.")
        while True:
            try:
                line = session.prompt("> ")
            except KeyboardInterrupt:
                continue
            except EOFError:
                return
            try:
                self.handle(line)
            except UserError as e:
                self.console.print(f"[red]error:[/red] {escape(str(e))}", soft_wrap=True)
            except Exception as e:  # a failure the session can outlive (a full disk, a GPU out of memory): say it, go on
                self.console.print(f"[red]error:[/red] {escape(type(e).__name__)}: {escape(str(e))}", soft_wrap=True)
            except KeyboardInterrupt:
                self.console.print("[dim](stopped)[/dim]")

    def handle(self, line: str) -> None:
        if not line.startswith("/"):
            if line.strip():
                self.write(line)
            return
        name, _, arg = line.strip().partition(" ")
        if name not in self.commands:
            raise UserError(f"unknown command {name}: /help lists them")
        self.commands[name](arg.strip())

    def toolbar(self) -> str:
        s = self.settings
        return (f" {self.model.name} ({self.model.kind}) | temperature {s.temperature:g} | length {s.max_new_chars}"
                f" | top-k {s.top_k or 'off'} | top-p {s.top_p or 'off'} | n {s.n}    /help")

    # ---- writing --------------------------------------------------------------
    def write(self, prompt: str) -> None:
        """Stream `n` samples of the prompt, each followed by its status line."""
        self.last_prompt = prompt
        for i in range(self.settings.n):
            if self.settings.n > 1:
                self.console.rule(f"sample {i + 1}/{self.settings.n}", style="dim")
            self.console.print(Text(prompt, style="dim"), end="")
            stream = self.model.stream(prompt, **self.settings.generation())
            result, stopped = stream_to_stdout(stream)
            self._stored(record(result, "repl"))
            if stopped:
                self.console.print("[dim](stopped)[/dim]")
                return

    def _stored(self, sample_id: int | None) -> None:
        if sample_id is None:
            return
        self.last_sample_id = sample_id
        with Store() as store:
            self.console.print(status_line(store.get(sample_id), self.min_span))

    def again(self, _: str) -> None:
        if self.last_prompt is None:
            raise UserError("nothing to repeat yet: type a prompt first")
        self.write(self.last_prompt)

    def compare(self, arg: str) -> None:
        name, _, prompt = arg.partition(" ")
        if not name:
            raise UserError("/compare MODEL [PROMPT]: name a model to compare with")
        if not prompt and self.last_prompt is None:
            raise UserError("no prompt yet: /compare MODEL PROMPT")
        prompt = prompt or self.last_prompt or ""
        other = self._load(name)
        self.last_prompt = prompt
        results = compare([self.model, other], prompt, source="repl", **self.settings.generation())
        self.console.print(side_by_side(prompt, results))
        for _, sample, _ in results:
            if sample is not None:
                self._stored(sample.id)

    # ---- settings -------------------------------------------------------------
    def set_model(self, arg: str) -> None:
        if arg:
            self.model = self._load(arg)
        self.console.print(f"model: {escape(self.model.name)} ({self.model.kind}, {self.model.path})")

    def _load(self, name: str) -> TextModel:
        if name not in self.models:
            self.models[name] = load_model(name)
        return self.models[name]

    def set_temperature(self, arg: str) -> None:
        self._set("temperature", "temperature", arg, float)

    def set_length(self, arg: str) -> None:
        self._set("length", "max_new_chars", arg, int)

    def set_top_k(self, arg: str) -> None:
        self._set("top-k", "top_k", arg, int, off=True)

    def set_top_p(self, arg: str) -> None:
        self._set("top-p", "top_p", arg, float, off=True)

    def set_n(self, arg: str) -> None:
        self._set("n", "n", arg, int)

    def _set(self, label: str, field: str, arg: str, kind: type, off: bool = False) -> None:
        """Set a value if one is given (checked as the generation API would), then show it."""
        if arg:
            try:
                value = None if off and arg == "off" else kind(arg)
            except ValueError:
                raise UserError(f"{label}: not a number: {arg!r}" + (" (or off)" if off else "")) from None
            candidate = replace(self.settings, **{field: value})
            Params(**candidate.generation()).check()
            if candidate.n < 1:
                raise UserError(f"n must be at least 1, got {candidate.n}")
            self.settings = candidate
        value = getattr(self.settings, field)
        self.console.print(f"{label}: {'off' if value is None else value}")

    # ---- the last sample ------------------------------------------------------
    def _last(self) -> int:
        if self.last_sample_id is None:
            raise UserError("no sample yet in this session")
        return self.last_sample_id

    def tag(self, arg: str) -> None:
        with Store() as store:
            store.tag(self._last(), arg.split())
            self.console.print(f"#{self._last()}: {', '.join(store.get(self._last()).tags)}")

    def ghostwrite(self, _: str) -> None:
        with Store() as store:
            store.tag(self._last(), [GHOSTWRITTEN])
            sample = store.get(self._last())
        self.console.print(f"[dim]#{sample.id} tagged {GHOSTWRITTEN}:[/dim]")
        self.console.print(sample.prompt + sample.text, markup=False)

    def check(self, _: str) -> None:
        with Store() as store:
            sample = store.get(self._last())
            span, index = check_stored(store, sample)
        self.console.print(check_view(sample, span, index, self.min_span, 80))

    def history(self, _: str) -> None:
        with Store() as store:
            self.console.print(sample_table(store.find(limit=10), self.min_span))

    def help(self, _: str) -> None:
        for usage, what in HELP.items():
            self.console.print(f"  [bold]{escape(usage)}[/bold]  {escape(what)}")
        self.console.print(f"  {KEYS}")


class SlashCompleter(Completer):
    """Commands after a /, model names after /model and /compare, known tags after /tag."""

    def get_completions(self, document: Document, complete_event: object) -> Iterator[Completion]:
        text = document.text_before_cursor
        if not text.startswith("/") or "\n" in text:
            return
        command, space, arg = text.partition(" ")
        if not space:
            choices = COMMANDS
        elif command in ("/model", "/compare") and " " not in arg:
            choices = modeldir.names()
        elif command == "/tag":
            arg = arg.rsplit(" ", 1)[-1]
            with Store() as store:
                choices = sorted({GHOSTWRITTEN, *store.tag_names()})
        else:
            return
        for choice in choices:
            if choice.startswith(command if not space else arg):
                yield Completion(choice, start_position=-len(command if not space else arg))


def _keys() -> KeyBindings:
    keys = KeyBindings()

    @keys.add("enter", filter=~is_searching)  # while searching (Ctrl-R), Enter takes the match into the prompt
    def _send(event) -> None:
        event.current_buffer.validate_and_handle()

    @keys.add("escape", "enter")
    def _newline(event) -> None:
        event.current_buffer.insert_text("\n")

    return keys
