"""The server's settings, from `initializationOptions` and `workspace/didChangeConfiguration`.

Editors send them as JSON objects, flat or under a `ghostwriter` key, with
camelCase names; every value is checked here so that a bad one is refused
with a message naming it instead of surfacing later as a failed generation.
"""

from dataclasses import asdict, dataclass, field, fields, replace
from typing import Any

from contract.sampling import SAMPLING_FIELDS, Sampling
from corpora import UserError
from corpora.suggest import did_you_mean

from ..generation import QUANTIZE

STOP_AT = ("sentence", "line", "length")


@dataclass(frozen=True)
class Settings:
    model: str | None = None  # None: the newest trained model
    temperature: float = 0.8
    top_p: float | None = 0.95
    auto_chars: int = 60  # the longest continuation for an automatic trigger (as you type)
    max_chars: int = 160  # the longest for an invoked trigger, a plain completion, the unconditional command
    alternatives: int = 3  # items answered to an invoked trigger
    context_chars: int = 1000  # how much of the text before the cursor the model reads
    stop_at: str = "sentence"  # sentence, line or length
    debounce_ms: int = 250  # a hint for the plugins: how long typing pauses before they ask
    quantize: str = "auto"  # GPT-2 on a CPU: int8 where its loss check allows (auto), int8 or an error, none
    # the other settings of the sampler chain, as `generate` takes them: {"minP": 0.05, "ban": ["suddenly"], "maxCopy": 50}
    sampling: dict = field(default_factory=dict)
    # steering, as `generate --author --guidance --prompt-guidance` takes it (assistant.blending.steered): which author
    # of a model trained with --author-tags to write as, and how strongly towards that author or the prompt
    author: str | None = None
    guidance: float | None = None
    prompt_guidance: float | None = None

    def updated(self, options: Any) -> "Settings":
        """These settings with `options` (a JSON object, or None) applied; unknown keys are errors too.

        An empty list counts as an empty object: that is how Lua (Neovim) sends an empty table.
        """
        if options is None or options == []:
            return self
        if not isinstance(options, dict):
            raise UserError(f"settings must be a JSON object, got {options!r}")
        options = options.get("ghostwriter", options)
        if not isinstance(options, dict):
            raise UserError(f"the ghostwriter settings must be a JSON object, got {options!r}")
        names = {_camel(f.name): f.name for f in fields(self)}
        unknown = sorted(set(options) - set(names))
        if unknown:
            raise UserError(f"unknown setting(s) {', '.join(unknown)}: known are {', '.join(sorted(names))}")
        new = replace(self, **{names[key]: value for key, value in options.items()})
        new.check()
        return new

    def check(self) -> None:
        if self.model is not None and (not isinstance(self.model, str) or not self.model.strip()):
            raise UserError(f"model must be a model name or path, got {self.model!r}")
        if not _number(self.temperature) or self.temperature < 0:
            raise UserError(f"temperature must be a number, zero or more, got {self.temperature!r}")
        if self.top_p is not None and not (_number(self.top_p) and 0 < self.top_p <= 1):
            raise UserError(f"topP must be in (0, 1] or null, got {self.top_p!r}")
        for name, low in (("auto_chars", 1), ("max_chars", 1), ("alternatives", 1), ("context_chars", 0),
                          ("debounce_ms", 0)):
            value = getattr(self, name)
            if not isinstance(value, int) or isinstance(value, bool) or value < low:
                raise UserError(f"{_camel(name)} must be a whole number, at least {low}, got {value!r}")
        if self.stop_at not in STOP_AT:
            raise UserError(f"stopAt must be one of {', '.join(STOP_AT)}, got {self.stop_at!r}"
                            + did_you_mean(self.stop_at, STOP_AT, tail=True))
        if self.author is not None and (not isinstance(self.author, str) or not self.author):
            raise UserError(f"author must be an author's name or null, got {self.author!r}")
        for name in ("guidance", "prompt_guidance"):
            value = getattr(self, name)
            if value is not None and not (_number(value) and value >= 0):
                raise UserError(f"{_camel(name)} must be a number, zero or more, or null, got {value!r}")
        if self.quantize not in QUANTIZE:
            raise UserError(f"quantize must be one of {', '.join(QUANTIZE)}, got {self.quantize!r}")
        self.chain()

    def chain(self) -> dict[str, Any]:
        """`sampling` as generation settings (snake_case, tuples); a one-line error for a name or value it lacks."""
        if not isinstance(self.sampling, dict):
            raise UserError(f"sampling must be a JSON object, got {self.sampling!r}")
        names = {_camel(name): name for name in SAMPLING_FIELDS if name not in ("temperature", "top_p")}
        if unknown := sorted(set(self.sampling) - set(names)):
            raise UserError(f"unknown sampling setting(s) {', '.join(unknown)}: known are {', '.join(sorted(names))}")
        chain = {names[k]: tuple(tuple(x) if isinstance(x, list) else x for x in v) if isinstance(v, list) else v
                 for k, v in self.sampling.items()}
        try:
            Sampling(**chain).check()
        except TypeError as e:
            raise UserError(f"a sampling setting has a value of the wrong type: {e}") from None
        return chain

    def as_json(self) -> dict[str, Any]:
        return {_camel(name): value for name, value in asdict(self).items()}


def _camel(name: str) -> str:
    head, *rest = name.split("_")
    return head + "".join(word.title() for word in rest)


def _number(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)
