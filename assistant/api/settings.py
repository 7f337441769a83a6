"""What a request asks for: OpenAI's and KoboldAI's fields read, checked and mapped onto the generation settings, once.

Every route reads its body with `read(body, dialect)` and gets `Settings`:
the prompt(s), the generation API's parameters, how many choices, echo and
streaming, and the fields it did not apply. A field is one of three things:

- applied (APPLIED): mapped onto Settings, and so onto `TextModel.stream`,
  exactly as `assistant generate` takes it;
- known but not applied yet (NOT_APPLIED): checked like an applied one (a value
  out of range is the client's mistake, answered 400), and named in
  `not_applied` whenever its value asks for something: `repetition_penalty: 1`
  asks nothing of a sampler, `1.1` does;
- unknown: accepted, since clients send what other backends take, and named
  in `not_applied`.

The routes put `not_applied` in a response header and in the `ghostwriter`
field of the answer, so nothing pretends to have been honoured. To apply a
field later (a repetition penalty, min_p, logprobs), give Settings and
`generation()` its value and move it from NOT_APPLIED to APPLIED: no route
changes.
"""

import math
import re
from collections.abc import Callable
from dataclasses import dataclass, replace
from typing import Any

MAX_TOKENS = 8192  # a larger max_tokens is clamped to this (and said so): clients send 1,024, 2,048 or more by default
MAX_N = 8  # choices per request
MAX_PROMPT_CHARS = 500_000  # a novel's worth; the model reads only its context's worth of the end
MAX_STOPS, MAX_STOP_CHARS = 64, 1000
MAX_SEED = 2**63 - 1 - MAX_N  # torch's seeds are 64-bit; choice i takes seed + i
FIELD_NAME = re.compile(r"[A-Za-z0-9_.\-]{1,64}")  # what a field name must look like to be named back in a header
MAX_NAMED = 32  # unknown fields named back at most


class Invalid(Exception):
    """A request a client got wrong: answered 400 with `param` named."""

    def __init__(self, message: str, param: str | None = None):
        super().__init__(message)
        self.param = param


@dataclass(frozen=True)
class Settings:
    """One request's generation settings, whichever API it came through."""

    prompts: tuple[str, ...] = ("",)
    model: str | None = None  # None: the server's default model
    max_tokens: int = 16
    temperature: float = 1.0
    top_k: int | None = None
    top_p: float | None = None
    seed: int | None = None  # None: drawn for each generation (and kept in its sample)
    stop: tuple[str, ...] = ()
    n: int = 1  # choices per prompt
    echo: bool = False  # the prompt before each choice's text
    stream: bool = False
    include_usage: bool = False  # streaming: a last chunk with the usage (OpenAI's stream_options)
    genkey: str | None = None  # KoboldAI: the key its abort names
    not_applied: tuple[str, ...] = ()
    clamped: tuple[str, ...] = ()  # values changed to fit, said back to the client

    def generation(self, choice: int) -> dict[str, Any]:
        """`TextModel.stream`'s parameters for the i-th choice: seeds N, N+1... as `assistant generate -n` takes them."""
        return {"max_new_tokens": self.max_tokens, "temperature": self.temperature, "top_k": self.top_k,
                "top_p": self.top_p, "seed": None if self.seed is None else self.seed + choice, "stop": self.stop}

    @property
    def choices(self) -> int:
        return len(self.prompts) * self.n


# ---- checks: each takes the field's name and value and returns the value as used, or raises Invalid ---------------
Check = Callable[[str, Any], Any]


def number(low: float, high: float = math.inf, *, above: bool = False) -> Check:
    """A finite number in [low, high] (`above`: (low, high])."""
    def check(name: str, value: Any) -> float:
        ok = isinstance(value, int | float) and not isinstance(value, bool) and math.isfinite(value)
        if not ok or value > high or (value <= low if above else value < low):
            bound = f"more than {low:g}" if above else f"at least {low:g}"
            raise Invalid(f"{name} must be a number, {bound}" + (f" and at most {high:g}" if high < math.inf else "")
                          + f", got {_show(value)}", name)
        return float(value)
    return check


def integer(low: int, high: int | None = None) -> Check:
    def check(name: str, value: Any) -> int:
        if isinstance(value, float) and value.is_integer():  # 100.0 from a client that keeps numbers as floats
            value = int(value)
        if not isinstance(value, int) or isinstance(value, bool) or value < low or (high is not None and value > high):
            raise Invalid(f"{name} must be a whole number, at least {low}" + (f" and at most {high}" if high else "")
                          + f", got {_show(value)}", name)
        return value
    return check


def of_type(kind: type, what: str) -> Check:
    """A value of this JSON type (`what`, for the message)."""
    def check(name: str, value: Any) -> Any:
        if not isinstance(value, kind):
            raise Invalid(f"{name} must be {what}, got {_show(value)}", name)
        return value
    return check


flag, mapping = of_type(bool, "true or false"), of_type(dict, "a JSON object")


def text(longest: int) -> Check:
    def check(name: str, value: Any) -> str:
        if len(of_type(str, "a string")(name, value)) > longest:
            raise Invalid(f"{name} is {len(value):,} characters long: at most {longest:,}", name)
        return value
    return check


def texts(most: int, longest: int) -> Check:
    """A string or a list of strings (OpenAI's `stop`, `prompt`); the list."""
    one = text(longest)

    def check(name: str, value: Any) -> tuple[str, ...]:
        values = [value] if isinstance(value, str) else value
        if not isinstance(values, list) or not all(isinstance(v, str) for v in values):
            raise Invalid(f"{name} must be a string or a list of strings, got {_show(value)}", name)
        if len(values) > most:
            raise Invalid(f"{name} holds {len(values)} strings: at most {most}", name)
        return tuple(one(name, v) for v in values)
    return check


def anything(name: str, value: Any) -> Any:
    return value


def one_of(*allowed: Any) -> Check:
    def check(name: str, value: Any) -> Any:
        if isinstance(value, bool) or value not in allowed:
            raise Invalid(f"{name} must be one of {', '.join(map(str, allowed))}, got {_show(value)}", name)
        return value
    return check


def _show(value: Any) -> str:
    shown = repr(value)
    return shown if len(shown) <= 40 else shown[:39] + "…"


# ---- the fields --------------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class Field:
    check: Check
    to: str | None = None  # the Settings field it sets (None: read by `read` itself)


def _prompt(name: str, value: Any) -> tuple[str, ...]:
    if isinstance(value, list) and value and all(isinstance(v, int) and not isinstance(v, bool) for v in value):
        raise Invalid(f"{name} as token ids is not supported: send the text", name)
    prompts = texts(MAX_N, MAX_PROMPT_CHARS)(name, value)
    if not prompts:
        raise Invalid(f"{name} must hold at least one string", name)
    return prompts


def _max_tokens(name: str, value: Any) -> int | None:
    """llama.cpp's -1 means as many as allowed: the cap."""
    return None if value == -1 else integer(0)(name, value)


def _top_k(name: str, value: Any) -> int | None:
    """0 and -1 mean off, as llama.cpp, KoboldCpp and vLLM take them."""
    value = integer(-1)(name, value)
    return value if value > 0 else None


def _seed(name: str, value: Any) -> int | None:
    """-1 means drawn for each generation, as KoboldCpp's sampler_seed."""
    return None if value == -1 else integer(0, MAX_SEED)(name, value)


def _messages(name: str, value: Any) -> tuple[str]:
    """A chat's messages as one prompt, for models that are not chat models: each message's text in order, roles left
    out, separated by a blank line, and a blank line after the last unless it is the assistant's own start (which the
    model then goes on with). GPT-2 and a char model have read prose, not "User:" and "Assistant:" turns."""
    if not isinstance(value, list) or not value:
        raise Invalid(f"{name} must be a non-empty list of {{role, content}} objects", name)
    parts = []
    for i, message in enumerate(value):
        where = f"{name}[{i}]"
        if not isinstance(message, dict) or not isinstance(message.get("role"), str):
            raise Invalid(f"{where} must be an object with a role and a content", where)
        content = message.get("content")
        if isinstance(content, list):  # OpenAI's content parts: only text ones can be read
            if not all(isinstance(part, dict) and part.get("type") == "text" for part in content):
                raise Invalid(f"{where}.content: only text parts can be read", f"{where}.content")
            content = "".join(text(MAX_PROMPT_CHARS)(f"{where}.content", part.get("text")) for part in content)
        parts.append(text(MAX_PROMPT_CHARS)(f"{where}.content", content if content is not None else ""))
    prompt = "\n\n".join(parts) + ("" if value[-1]["role"] == "assistant" else "\n\n")
    return (text(MAX_PROMPT_CHARS)(name, prompt),)


def _stream_options(name: str, value: Any) -> bool:
    return flag(f"{name}.include_usage", mapping(name, value).get("include_usage", False))


# what every dialect applies, by its own names (KoboldAI's one choice streams as one run of tokens: no `n`)
COMMON = {
    "model": Field(text(1000), "model"),
    "temperature": Field(number(0, 5), "temperature"),
    "top_p": Field(number(0, 1), "top_p"),  # 0: the likeliest token alone (see read)
    "top_k": Field(_top_k, "top_k"),
    "stop": Field(texts(MAX_STOPS, MAX_STOP_CHARS), "stop"),
}
OPENAI = {**COMMON, "n": Field(integer(1, MAX_N), "n"), "max_tokens": Field(_max_tokens, "max_tokens"),
          "seed": Field(_seed, "seed"), "stream": Field(flag, "stream"),
          "stream_options": Field(_stream_options, "include_usage")}
APPLIED: dict[str, dict[str, Field]] = {
    "openai": {**OPENAI, "prompt": Field(_prompt, "prompts"), "echo": Field(flag, "echo"),
               "n_predict": Field(_max_tokens, "max_tokens")},  # llama.cpp's name for max_tokens
    "chat": {**OPENAI, "messages": Field(_messages, "prompts"), "max_completion_tokens": Field(_max_tokens, "max_tokens")},
    "kobold": {**COMMON, "prompt": Field(text(MAX_PROMPT_CHARS)), "memory": Field(text(MAX_PROMPT_CHARS)),
               "max_length": Field(_max_tokens, "max_tokens"), "stop_sequence": COMMON["stop"],
               "sampler_seed": Field(_seed, "seed"), "genkey": Field(text(200), "genkey")},
}
# What a request may ask of the settings the defaults of each dialect leave: OpenAI's own defaults (16 tokens of a
# completion, as many as fit a chat's answer); KoboldCpp's 100 tokens at ghostwriter's temperature.
DEFAULTS = {"openai": Settings(), "chat": Settings(max_tokens=MAX_TOKENS),
            "kobold": Settings(max_tokens=100, temperature=0.8)}
# Informational fields that ask nothing of a generation: accepted, never named as not applied.
INFORMATIONAL = {"user", "quiet", "cache_prompt", "id_slot", "stream_sse"}


@dataclass(frozen=True)
class Known:
    """A field that is known but not applied yet: its check, and the values that ask nothing of a generation."""

    check: Check
    neutral: Callable[[Any], bool]


def _is(*values: Any) -> Callable[[Any], bool]:
    """Neutral when the value is one of `values`: a number equal to one of them (1.0 is 1), true, false and null
    only as themselves (true is not 1)."""
    def neutral(value: Any) -> bool:
        return any(value is v if v is None or isinstance(v, bool) or isinstance(value, bool) else value == v
                   for v in values)
    return neutral


def tuning(value: Any) -> bool:
    """Neutral whatever its value: a field that only tunes another (mirostat_tau tunes mirostat), which is named."""
    return True


def never(value: Any) -> bool:
    """Any value asks for something."""
    return False


NOT_APPLIED: dict[str, Known] = {
    # OpenAI's
    "logprobs": Known(lambda n, v: v if isinstance(v, bool) else integer(0, 20)(n, v), _is(None, False)),
    "top_logprobs": Known(integer(0, 20), _is(None, 0)),
    "presence_penalty": Known(number(-2, 2), _is(None, 0)),
    "frequency_penalty": Known(number(-2, 2), _is(None, 0)),
    "logit_bias": Known(mapping, lambda v: not v),
    "best_of": Known(integer(1, 20), _is(None, 1)),
    "suffix": Known(text(MAX_PROMPT_CHARS), lambda v: not v),
    # the story front ends' (llama.cpp, KoboldCpp, text-generation-webui)
    "repetition_penalty": Known(number(0, 10, above=True), _is(None, 1)),
    "rep_pen": Known(number(0, 10, above=True), _is(None, 1)),
    "repeat_penalty": Known(number(0, 10, above=True), _is(None, 1)),
    "rep_pen_range": Known(integer(-1), tuning),
    "rep_pen_slope": Known(number(0), tuning),
    "repeat_last_n": Known(integer(-1), tuning),
    "penalize_nl": Known(flag, tuning),
    "min_p": Known(number(0, 1), _is(None, 0)),
    "typical_p": Known(number(0, 1), _is(None, 0, 1)),
    "typical": Known(number(0, 1), _is(None, 0, 1)),
    "tfs": Known(number(0, 1), _is(None, 0, 1)),
    "tfs_z": Known(number(0, 1), _is(None, 0, 1)),
    "top_a": Known(number(0), _is(None, 0)),
    "mirostat": Known(one_of(0, 1, 2), _is(None, 0)),
    "mirostat_mode": Known(one_of(0, 1, 2), _is(None, 0)),
    "mirostat_tau": Known(number(0), tuning),
    "mirostat_eta": Known(number(0), tuning),
    "dynatemp_range": Known(number(0), _is(None, 0)),
    "dynatemp_exponent": Known(number(0), tuning),
    "smoothing_factor": Known(number(0), _is(None, 0)),
    "min_tokens": Known(integer(0), _is(None, 0)),
    "ignore_eos": Known(flag, _is(None, False)),
    "bypass_eos": Known(flag, _is(None, False)),
    "use_default_badwordsids": Known(flag, _is(None, False)),
    "trim_stop": Known(flag, _is(None, True)),  # ghostwriter never returns the stop string
    "max_context_length": Known(integer(1), never),  # the model reads its own context's worth, whatever the budget
    "sampler_order": Known(anything, tuning),  # the samplers applied run in one order: temperature, top-k, top-p
    "grammar": Known(anything, lambda v: not v),
    "banned_tokens": Known(anything, lambda v: not v),
}


def read(body: Any, dialect: str) -> Settings:
    """The settings a request's JSON body asks for, in `dialect` ("openai", "chat" or "kobold"); Invalid if it is wrong.

    A field sent as null takes its default, as clients send a field they leave unset.
    """
    if not isinstance(body, dict):
        raise Invalid("the request body must be a JSON object")
    fields = APPLIED[dialect]
    values: dict[str, Any] = {}
    not_applied: list[str] = []
    unknown: list[str] = []
    for name, value in body.items():
        if name in fields:
            if value is not None:
                checked = fields[name].check(name, value)
                if fields[name].to is not None:
                    values[fields[name].to] = checked
        elif name in NOT_APPLIED:
            known = NOT_APPLIED[name]
            if value is not None:
                known.check(name, value)
            if not known.neutral(value):
                not_applied.append(name)
        elif name not in INFORMATIONAL:
            unknown.append(name)
    if dialect == "chat" and "prompts" not in values:
        raise Invalid("messages is required: a list of {role, content}", "messages")
    if dialect == "kobold":  # KoboldCpp's memory comes before the prompt, and is kept when the prompt is cut
        values["prompts"] = ((body.get("memory") or "") + (body.get("prompt") or ""),)
    named = [name for name in unknown if FIELD_NAME.fullmatch(name)]
    not_applied += named[:MAX_NAMED] + (["..."] if len(named) > MAX_NAMED or len(named) < len(unknown) else [])
    return _bounded(replace(DEFAULTS[dialect], **values, not_applied=tuple(not_applied)))


def _bounded(settings: Settings) -> Settings:
    """`max_tokens` within MAX_TOKENS (said back in `clamped`), and top_p 0 as the likeliest token alone."""
    clamped = []
    max_tokens = settings.max_tokens
    if max_tokens is None or max_tokens > MAX_TOKENS:
        if max_tokens is not None:
            clamped.append(f"max_tokens={MAX_TOKENS}")
        max_tokens = MAX_TOKENS
    if settings.choices > MAX_N:
        raise Invalid(f"{len(settings.prompts)} prompts x n {settings.n} is {settings.choices} choices: at most {MAX_N}",
                      "n")
    top_p, top_k = settings.top_p, settings.top_k
    if top_p is not None and top_p >= 1:
        top_p = None
    elif top_p == 0:
        top_p, top_k = None, 1
    return replace(settings, max_tokens=max_tokens, top_p=top_p, top_k=top_k, clamped=tuple(clamped))
