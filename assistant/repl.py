"""`assistant repl`: write with a model interactively.

A thin loop over the same generation API and store the CLI uses: type a
prompt (Enter sends it, Alt-Enter adds a line), watch the continuation
stream, Ctrl-C stops it (the partial text is stored, marked cancelled) and
Ctrl-D or /quit leaves. Lines that start with / are commands; /help lists
them. A bad command or value prints one line and the session goes on.
"""

import signal
import sys
from collections.abc import Callable, Iterator
from dataclasses import dataclass, fields, replace

from prompt_toolkit import PromptSession
from prompt_toolkit.completion import Completer, Completion
from prompt_toolkit.document import Document
from prompt_toolkit.filters import is_searching
from prompt_toolkit.history import FileHistory
from prompt_toolkit.key_binding import KeyBindings
from rich.console import Console
from rich.markup import escape
from rich.table import Table
from rich.text import Text

from contract import modeldir
from contract.sampling import Sampling
from corpora import UserError
from corpora.home import data_home
from corpora.suggest import did_you_mean

from .compare import compare
from .generation import DEFAULT_CHARS, QUANTIZE, STOP_AT, Generation, Params, Session, TextModel, load_model
from .samples.publishing import ghostwrite, paste_text
from .samples.recording import check_stored, record
from .samples.store import GHOSTWRITTEN, Store
from .samples.views import check_view, sample_table, status_line
from .terminal import probability_table, stream_to_stdout

HISTORY = "repl_history"
HELP = {
    "/model NAME": "write with another model (a name or a directory)",
    "/temperature T": "sampling temperature (0 is greedy)",
    "/length N": "characters per sample",
    "/tokens N|off": "tokens per sample instead (GPT-2's; a char model's are characters); off: characters again",
    "/top-k K|off": "sample from the K likeliest tokens (off: all)",
    "/top-p P|off": "sample from the likeliest tokens holding probability P (off: all)",
    "/stop-at " + "|".join(STOP_AT) + "|off": "end each sample at the end of its first sentence, line or paragraph",
    "/seed N|off": "write the next samples with seed N, N+1... so they can be written again (off: a new one each time)",
    "/n N": "samples per prompt",
    "/set NAME VALUE|off": "any setting of the sampler chain (min-p, repetition-penalty, dry-multiplier, ban, max-copy...)"
                           " or of steering (author, guidance, prompt-guidance)",
    "/settings": "every setting the next sample is written with",
    "/probs": "the last sample's tokens with their probabilities and alternatives",
    "/branch K ALT": "write on from the last sample's token K with its alternative ALT instead (numbers of /probs)",
    "/quantize auto|int8|none": "GPT-2 on a CPU: int8 where its loss check allows (auto), int8 or an error, float32",
    "/uncond": "an unconditional sample",
    "/again": "the last prompt again",
    "/compare MODEL [PROMPT]": "the last prompt (or PROMPT) through this model and MODEL, side by side",
    "/tag TAG...": "tag the last sample",
    "/ghostwrite [anyway]": "tag the last sample ghostwritten and print it, ready to paste (anyway: even if it copies)",
    "/check": "the longest passage the last sample copies from the corpus",
    "/history": "the last samples stored",
    "/help": "this list",
    "/quit": "leave (so do /exit and Ctrl-D)",
}
COMMANDS = [usage.split()[0] for usage in HELP] + ["/exit"]
KEYS = "Enter sends, Alt-Enter (or Esc Enter) adds a line, Ctrl-R searches the history, Ctrl-C stops, Ctrl-D leaves."


@dataclass
class Settings:
    max_new_chars: int | None = DEFAULT_CHARS  # None while the length is in tokens
    max_new_tokens: int | None = None
    temperature: float = 0.8
    top_k: int | None = None
    top_p: float | None = None
    stop_at: str | None = None
    seed: int | None = None  # the first sample's of each prompt; None: drawn for each
    n: int = 1
    chain: tuple[tuple[str, object], ...] = ()  # the other settings of the sampler chain and steering set with /set

    def generation(self, i: int = 0) -> dict:
        """The generation API's parameters for the i-th sample of a prompt (seed N, N+1... as `generate -n` does)."""
        return {"max_new_chars": self.max_new_chars, "max_new_tokens": self.max_new_tokens,
                "temperature": self.temperature, "top_k": self.top_k, "top_p": self.top_p, "stop_at": self.stop_at,
                "seed": None if self.seed is None else self.seed + i, **dict(self.chain)}


class Repl:
    def __init__(self, model: str | None, min_span: int, quantize: str = "auto", device: str = "auto"):
        self.min_span = min_span  # samples copying this many characters of their corpus are flagged
        self.console = Console(highlight=False)
        self.quantize = quantize
        self.device = device
        self.models: dict[str, TextModel] = {}
        self._session: Session | None = None
        self.model = self._load(model or modeldir.newest())
        self.settings = Settings()
        self.last_prompt: str | None = None
        self.last_sample_id: int | None = None
        self.last_seed: int | None = None
        self.last: Generation | None = None  # the last sample written, for /probs and /branch
        self.done = False
        self.commands: dict[str, Callable[[str], None]] = {
            "/model": self.set_model, "/temperature": self.set_temperature, "/length": self.set_length,
            "/tokens": self.set_tokens, "/top-k": self.set_top_k, "/top-p": self.set_top_p,
            "/stop-at": self.set_stop_at, "/seed": self.set_seed, "/n": self.set_n, "/quantize": self.set_quantize,
            "/set": self.set_any, "/settings": self.show_settings, "/probs": self.probs, "/branch": self.branch,
            "/uncond": lambda _: self.write(""), "/again": self.again, "/compare": self.compare, "/tag": self.tag,
            "/ghostwrite": self.ghostwrite, "/check": self.check, "/history": self.history, "/help": self.help,
            "/quit": self.quit, "/exit": self.quit,
        }

    def run(self) -> None:
        # A REPL started where SIGINT is ignored (a background job, a script's child) inherits that, and Ctrl-C would
        # never stop a generation; the writer is at a terminal, so Ctrl-C is made to raise KeyboardInterrupt here.
        previous = signal.signal(signal.SIGINT, signal.default_int_handler)
        try:
            self._prompt_loop()
        finally:
            signal.signal(signal.SIGINT, previous)

    def _prompt_loop(self) -> None:
        home = data_home()
        home.mkdir(parents=True, exist_ok=True)
        session: PromptSession[str] = PromptSession(
            history=FileHistory(str(home / HISTORY)), multiline=True, key_bindings=_keys(),
            completer=SlashCompleter(), bottom_toolbar=self.toolbar, prompt_continuation="  ",
        )
        self.console.print(f"[bold]{escape(self.model.card.named)}[/bold] is ready. {KEYS} /help for commands.")
        while not self.done:
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
            raise UserError(f"unknown command {name}: " + did_you_mean(name, COMMANDS, quote=False)
                            + "/help lists them")
        self.commands[name](arg.strip())

    def toolbar(self) -> str:
        s = self.settings
        length = f"{s.max_new_tokens} tokens" if s.max_new_tokens is not None else s.max_new_chars
        optional = "".join(f" | {label} {value}" for label, value in (("stop-at", s.stop_at), ("seed", s.seed))
                           if value is not None)
        return (f" {self.model.card.label} ({self.model.kind}) | temperature {s.temperature:g} | length {length}"
                f"{optional} | top-k {s.top_k or 'off'} | top-p {s.top_p or 'off'} | n {s.n}    /help")

    def quit(self, _: str) -> None:
        self.done = True

    # ---- writing --------------------------------------------------------------
    def write(self, prompt: str) -> None:
        """Stream `n` samples of the prompt, each followed by its status line."""
        self.last_prompt = prompt
        for i in range(self.settings.n):
            if self.settings.n > 1:
                self.console.rule(f"sample {i + 1}/{self.settings.n}", style="dim")
            if self._written(prompt, self.settings.generation(i)):
                self.console.print("[dim](stopped)[/dim]")
                return

    def _written(self, prompt: str, settings: dict, branch: dict | None = None) -> bool:
        """Stream one sample, with each token's alternatives for /probs, and record it; whether Ctrl-C stopped it."""
        stream = self.model.stream(prompt, **settings, session=self.session, alternatives=ALTERNATIVES)
        result, stopped = stream_to_stdout(stream, lambda: self.console.print(Text(prompt, style="dim"), end=""))
        self.last_seed, self.last = result.seed, result
        self._stored(record(result, "repl", branch=branch))
        return stopped

    def probs(self, _: str) -> None:
        if self.last is None:
            raise UserError("no sample yet in this session")
        self.console.print(probability_table(self.last.tokens))

    def branch(self, arg: str) -> None:
        """A new sample that goes on from the last one's token K with its alternative ALT, stored with its parent."""
        last = self.last
        if last is None:
            raise UserError("no sample yet in this session")
        try:
            k, alt = (int(part) for part in arg.split())
            chosen = last.tokens[k].alternatives[alt][0]
        except (ValueError, IndexError):
            raise UserError(f"/branch K ALT: a token and one of its alternatives, as /probs numbers them "
                            f"({len(last.tokens)} tokens)") from None
        prompt = last.prompt + "".join(t.text for t in last.tokens[:k]) + chosen
        self.last_prompt = prompt
        parent = self.last_sample_id
        if self._written(prompt, self.settings.generation(), {"parent": parent, "token": k, "alternative": chosen}):
            self.console.print("[dim](stopped)[/dim]")

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
        sides, stopped = compare([self.model, other], prompt, self.console, source="repl", min_span=self.min_span,
                                 **self.settings.generation())
        for side in sides:  # the columns are headed by their ids and flagged when they copy: no status lines
            assert side.result is not None
            self.last_seed = side.result.seed
            if side.sample_id is not None:
                self.last_sample_id = side.sample_id
        if stopped:
            self.console.print("[dim](stopped)[/dim]")

    # ---- settings -------------------------------------------------------------
    def set_model(self, arg: str) -> None:
        if arg:
            self.model = self._load(arg)
        self.console.print(f"model: {escape(self.model.card.named)} ({self.model.kind}, {self.model.path})")

    @property
    def session(self) -> Session:
        """This conversation's session with the current model: a prompt feeds only what is new since the last one."""
        if self._session is None or self._session.model is not self.model:
            self._session = self.model.session()
        return self._session

    def _load(self, name: str) -> TextModel:
        if name not in self.models:
            self.models[name] = load_model(name, self.device, self.quantize)
        return self.models[name]

    def set_quantize(self, arg: str) -> None:
        """int8 or float32 from now on: the model is loaded again that way (a refused int8 leaves all as it was)."""
        if arg and arg != self.quantize:
            if arg not in QUANTIZE:
                raise UserError(f"/quantize takes {', '.join(QUANTIZE)}, got {arg!r}")
            name = next(n for n, m in self.models.items() if m is self.model)
            model = load_model(name, self.device, arg)
            self.quantize, self.models, self.model = arg, {name: model}, model
        self.console.print(f"quantize: {self.quantize} ({escape(self.model.name)} writes in {self.model.precision})")

    def set_temperature(self, arg: str) -> None:
        self._set("temperature", "temperature", arg, float)

    def set_length(self, arg: str) -> None:
        """A sample's length in characters; it replaces a length in tokens, so that the one set is the one kept."""
        self._set("length", "max_new_chars", arg, int)
        if arg:
            self.settings = replace(self.settings, max_new_tokens=None)

    def set_tokens(self, arg: str) -> None:
        """A sample's length in tokens instead of characters (`/tokens 200` writes 200 GPT-2 tokens, not 500
        characters at most); off goes back to characters."""
        self._set("tokens", "max_new_tokens", arg, int, off=True)
        if arg:
            tokens = self.settings.max_new_tokens
            self.settings = replace(self.settings, max_new_chars=None if tokens is not None else DEFAULT_CHARS)

    def set_stop_at(self, arg: str) -> None:
        self._set("stop-at", "stop_at", arg, str, off=True)

    def set_seed(self, arg: str) -> None:
        self._set("seed", "seed", arg, int, off=True)
        if self.settings.seed is None and self.last_seed is not None:
            self.console.print(f"the last sample's seed: {self.last_seed} (/seed {self.last_seed} writes it again)")

    def set_top_k(self, arg: str) -> None:
        self._set("top-k", "top_k", arg, int, off=True)

    def set_top_p(self, arg: str) -> None:
        self._set("top-p", "top_p", arg, float, off=True)

    def set_any(self, arg: str) -> None:
        """`/set NAME VALUE`: any setting of the sampler chain or of steering (`/set author austen`), by its flag's
        name; `off` sets it back to its default."""
        name, _, value = arg.partition(" ")
        field = name.replace("-", "_")
        if field not in CHAIN_DEFAULTS:
            raise UserError(f"/set takes one of {', '.join(n.replace('_', '-') for n in CHAIN_DEFAULTS)}, not {name!r}")
        default = CHAIN_DEFAULTS[field]
        chain = dict(self.settings.chain)
        if value in ("", "off"):
            chain.pop(field, None)
        else:
            chain[field] = _parse(field, value, default)
        candidate = replace(self.settings, chain=tuple(chain.items()))
        Params(**candidate.generation()).check()
        self.settings = candidate
        self.console.print(f"{name}: {chain.get(field, 'off' if default is None else default)}")

    def show_settings(self, _: str) -> None:
        for field, value in Params(**self.settings.generation()).__dict__.items():
            self.console.print(f"{field.replace('_', '-')}: {'off' if value is None else value}")

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
            if candidate.seed is not None and candidate.seed < 0:
                raise UserError(f"seed must be zero or more, got {candidate.seed}")
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

    def ghostwrite(self, arg: str) -> None:
        """Like `assistant samples ghostwrite`: a sample that copies its corpus only with `anyway`; the text exactly as
        stored, never wrapped at the terminal's width, since it is for pasting."""
        if arg not in ("", "anyway"):
            raise UserError(f"/ghostwrite takes nothing or anyway, got {arg!r}")
        with Store() as store:
            sample, warning = ghostwrite(store, self._last(), self.min_span, arg == "anyway", "Type /ghostwrite anyway")
        if warning:
            self.console.print(Text(f"warning: {warning}", style="bold red"))
        self.console.print(f"[dim]#{sample.id} tagged {GHOSTWRITTEN}:[/dim]")
        sys.stdout.write(paste_text(sample))
        sys.stdout.flush()

    def check(self, _: str) -> None:
        with Store() as store:
            sample = store.get(self._last())
            span, index = check_stored(store, sample)
        self.console.print(check_view(sample, span, index, self.min_span, 80))

    def history(self, _: str) -> None:
        with Store() as store:
            self.console.print(sample_table(store.find(limit=10), self.min_span, self.console))

    def help(self, _: str) -> None:
        """The commands in two columns; a description too long for the terminal wraps within its own column."""
        table = Table.grid(padding=(0, 2), pad_edge=True)
        table.add_column(no_wrap=True, style="bold")
        table.add_column()
        for usage, what in HELP.items():
            table.add_row(Text(usage), Text(what))
        self.console.print(table)
        self.console.print(f"  {KEYS}")


ALTERNATIVES = 5  # alternatives kept with each token of a REPL sample (/probs, /branch)
CHAIN_DEFAULTS = {f.name: f.default for f in fields(Sampling) if f.name not in ("temperature", "top_k", "top_p")} | {
    f.name: f.default for f in fields(Params) if f.name in ("author", "guidance", "prompt_guidance")}


def _parse(field: str, value: str, default: object) -> object:
    """A /set value as its setting takes it: a number, a list of phrases (ban: separated by |), TEXT=N biases."""
    try:
        if field == "author":
            return value
        if field == "ban" or field == "dry_breakers":
            return tuple(part for part in value.split("|") if part)
        if field == "logit_bias":
            return tuple((text, float(bias)) for text, _, bias in (item.rpartition("=") for item in value.split("|")))
        if field in ("min_p", "typical_p", "guidance", "prompt_guidance") or isinstance(default, float):
            return float(value)
        return int(value)
    except ValueError:
        raise UserError(f"{field.replace('_', '-')}: not a valid value: {value!r}") from None


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
