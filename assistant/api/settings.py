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
field later, give Settings and `generation()` its value and move it from
NOT_APPLIED to APPLIED: no route changes.

The sampler chain's fields (CHAIN: repetition and presence penalties, DRY,
min_p, typical, banned phrases, the copy guard) go to `Settings.chain` by
contract.sampling.Sampling's names, under every spelling the story front
ends use, with each spelling's own meaning of 0 and -1; a logit bias stays
by token id until the model that maps ids to text is known (`generation`).
"""

import json
import math
import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass, fields, replace
from typing import Any

from contract.sampling import SAMPLING_FIELDS, changed

MAX_TOKENS = 8192  # a larger max_tokens is clamped to this (and said so): clients send 1,024, 2,048 or more by default
MAX_N = 8  # choices per request
MAX_PROMPT_CHARS = 500_000  # a novel's worth; the model reads only its context's worth of the end
MAX_STOPS, MAX_STOP_CHARS = 64, 1000
MAX_SEED = 2**63 - 1 - MAX_N  # torch's seeds are 64-bit; choice i takes seed + i
FIELD_NAME = re.compile(r"[A-Za-z0-9_.\-]{1,64}")  # what a field name must look like to be named back in a header
MAX_NAMED = 32  # unknown fields named back at most
MAX_PHRASES, MAX_PHRASE_CHARS = 256, 200  # banned phrases, DRY's breakers, logit biases by text
MAX_BIASES = 1024  # logit_bias entries
MAX_RANGE = 1_000_000  # tokens a penalty looks back over, characters the copy guard allows: more is the whole text
MAX_ALTERNATIVES = 20  # OpenAI's most top_logprobs
KOBOLD_ALTERNATIVES = 5  # KoboldCpp's logprobs: the 5 likeliest tokens at each


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
    chain: tuple[tuple[str, Any], ...] = ()  # the sampler chain's other settings asked for, by Sampling's names
    logit_bias: tuple[tuple[int | str, float], ...] = ()  # by token id (OpenAI's, KoboldAI's) or by text (ghostwriter's)
    # ghostwriter's steering (assistant.blending.steered), as `generate --author --guidance --prompt-guidance` takes it
    author: str | None = None
    guidance: float | None = None
    prompt_guidance: float | None = None
    logprobs: int | None = None  # the likeliest tokens listed at each token written; None: no probabilities
    top_logprobs: int = 0  # OpenAI's, read into `logprobs`
    not_applied: tuple[str, ...] = ()
    clamped: tuple[str, ...] = ()  # values changed to fit, said back to the client

    def generation(self, choice: int, token_texts: Callable[[], Sequence[str]]) -> dict[str, Any]:
        """`TextModel.stream`'s parameters for the i-th choice: seeds N, N+1... as `assistant generate -n` takes them,
        and the chain's settings as its flags give them (those at the chain's default leave the model's own).
        `token_texts` is the model's text of each id, asked for only when a logit bias names ids."""
        chain = dict(self.chain)
        if self.logit_bias:
            chain["logit_bias"] = tuple((_bias_id(key, token_texts()) if isinstance(key, int) else key, bias)
                                        for key, bias in self.logit_bias)
        return {"max_new_tokens": self.max_tokens, "temperature": self.temperature, "top_k": self.top_k,
                "top_p": self.top_p, "seed": None if self.seed is None else self.seed + choice, "stop": self.stop,
                "alternatives": self.logprobs, "author": self.author, "guidance": self.guidance,
                "prompt_guidance": self.prompt_guidance, **changed(chain)}

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



def _off(check: Check, *off: float) -> Check:
    """`check`, with the values that mean "off" (min_p 0, typical 1) read as the chain's None."""
    def read(name: str, value: Any) -> Any:
        checked = check(name, value)
        return None if checked in off else checked
    return read


def _last_n(name: str, value: Any) -> int | None:
    """llama.cpp's and KoboldCpp's range (repeat_last_n, rep_pen_range, dry_penalty_last_n): -1 is the whole text
    (the chain's 0), and 0 no tokens at all, which turns off what it ranges over (see `_ranged`)."""
    value = integer(-1, MAX_RANGE)(name, value)
    return 0 if value == -1 else value or None


def _phrases(name: str, value: Any) -> tuple[str, ...]:
    """Banned phrases (KoboldCpp's banned_tokens, tabbyAPI's banned_strings): a string or a list; blank ones, which
    clients send for an empty row, ban nothing and are left out."""
    return tuple(p for p in texts(MAX_PHRASES, MAX_PHRASE_CHARS)(name, value) if p.strip())


def _breakers(name: str, value: Any) -> tuple[str, ...]:
    """DRY's sequence breakers: a list of strings, or text-generation-webui's string of quoted ones ('"\\n", ":"')."""
    if isinstance(value, str):
        try:
            value = json.loads(f"[{text(MAX_PHRASES * MAX_PHRASE_CHARS)(name, value)}]")
        except (json.JSONDecodeError, RecursionError):
            raise Invalid(f'{name} must be a list of strings, or quoted strings separated by commas: "\\n", ":"',
                          name) from None
    breakers = texts(MAX_PHRASES, MAX_PHRASE_CHARS)(name, value)
    if not all(breakers):
        raise Invalid(f"{name} holds an empty string, which would break every sequence", name)
    return breakers


def _logit_bias(name: str, value: Any) -> tuple[tuple[int | str, float], ...]:
    """OpenAI's and KoboldAI's map of token id (a string of digits) to a bias in [-100, 100]; any other key is a text
    whose tokens are biased, as `assistant generate --bias TEXT=N` takes it."""
    if len(mapping(name, value)) > MAX_BIASES:
        raise Invalid(f"{name} holds {len(value):,} entries: at most {MAX_BIASES:,}", name)
    biases = []
    for key, bias in value.items():
        where = f"{name}[{key[:MAX_PHRASE_CHARS]!r}]"
        bias = number(-100, 100)(where, bias)
        biases.append((int(key) if key.isascii() and key.isdigit() else text(MAX_PHRASE_CHARS)(where, key), bias))
    if any(key == "" for key, _ in biases):
        raise Invalid(f"{name} has an empty key: name a token id or a text", name)
    return tuple(biases)


def _bias_id(token: int, texts: Sequence[str]) -> int:
    """A token id a bias names, checked against the model's tokens (a 400 naming the field, not a failed stream)."""
    if token >= len(texts):
        raise Invalid(f"logit_bias names token {token}: this model's tokens are 0 to {len(texts) - 1}", "logit_bias")
    return token


def _legacy_logprobs(name: str, value: Any) -> int | None:
    """OpenAI's completions: the number of likeliest tokens (true, as chat's clients send it, lists none)."""
    if isinstance(value, bool):
        return 0 if value else None
    return integer(0, MAX_ALTERNATIVES)(name, value)


def _asked(alternatives: int) -> Check:
    """A flag asking for probabilities (chat's logprobs, KoboldAI's), with `alternatives` likeliest tokens."""
    def check(name: str, value: Any) -> int | None:
        return alternatives if flag(name, value) else None
    return check



# what every dialect applies, by its own names (KoboldAI's one choice streams as one run of tokens: no `n`)
COMMON = {
    "model": Field(text(1000), "model"),
    "temperature": Field(number(0, 5), "temperature"),
    "top_p": Field(number(0, 1), "top_p"),  # 0: the likeliest token alone (see read)
    "top_k": Field(_top_k, "top_k"),
    "stop": Field(texts(MAX_STOPS, MAX_STOP_CHARS), "stop"),
    # ghostwriter's own: write as one author of a model trained with --author-tags, guided towards it or the prompt
    "author": Field(text(200), "author"),
    "guidance": Field(number(0), "guidance"),
    "prompt_guidance": Field(number(0), "prompt_guidance"),
}
# the sampler chain (docs/controls.md), under OpenAI's, KoboldAI's, llama.cpp's and text-generation-webui's names
PENALTY, RANGE = Field(number(0, 10, above=True), "repetition_penalty"), Field(_last_n, "repetition_range")
TYPICAL = Field(_off(number(0, 1), 0, 1), "typical_p")
BANS = Field(_phrases, "ban")
CHAIN = {
    "presence_penalty": Field(number(-2, 2), "presence_penalty"),
    "frequency_penalty": Field(number(-2, 2), "frequency_penalty"),
    "logit_bias": Field(_logit_bias, "logit_bias"),
    "repetition_penalty": PENALTY, "rep_pen": PENALTY, "repeat_penalty": PENALTY,
    "rep_pen_range": RANGE, "repeat_last_n": RANGE,
    "repetition_penalty_range": Field(integer(0, MAX_RANGE), "repetition_range"),  # text-generation-webui's: 0 is the whole text
    "min_p": Field(_off(number(0, 1), 0), "min_p"),
    "typical": TYPICAL, "typical_p": TYPICAL,
    "dry_multiplier": Field(number(0, 5), "dry_multiplier"),
    "dry_base": Field(number(1, 4), "dry_base"),
    "dry_allowed_length": Field(integer(0, 1000), "dry_allowed_length"),
    "dry_range": Field(integer(0, MAX_RANGE), "dry_range"),  # ghostwriter's: 0 is the whole text
    "dry_penalty_last_n": Field(_last_n, "dry_range"),
    "dry_sequence_breakers": Field(_breakers, "dry_breakers"),
    "banned_tokens": BANS, "banned_strings": BANS,
    "max_copy": Field(integer(1, MAX_RANGE), "max_copy"),  # ghostwriter's own: the copy guard, in characters
}
OPENAI = {**COMMON, **CHAIN, "n": Field(integer(1, MAX_N), "n"), "max_tokens": Field(_max_tokens, "max_tokens"),
          "seed": Field(_seed, "seed"), "stream": Field(flag, "stream"),
          "stream_options": Field(_stream_options, "include_usage"),
          "top_logprobs": Field(integer(0, MAX_ALTERNATIVES), "top_logprobs")}
APPLIED: dict[str, dict[str, Field]] = {
    "openai": {**OPENAI, "prompt": Field(_prompt, "prompts"), "echo": Field(flag, "echo"),
               "n_predict": Field(_max_tokens, "max_tokens"),  # llama.cpp's name for max_tokens
               "logprobs": Field(_legacy_logprobs, "logprobs")},
    "chat": {**OPENAI, "messages": Field(_messages, "prompts"), "max_completion_tokens": Field(_max_tokens, "max_tokens"),
             "logprobs": Field(_asked(0), "logprobs")},
    "kobold": {**COMMON, **CHAIN, "prompt": Field(text(MAX_PROMPT_CHARS)), "memory": Field(text(MAX_PROMPT_CHARS)),
               "max_length": Field(_max_tokens, "max_tokens"), "stop_sequence": COMMON["stop"],
               "sampler_seed": Field(_seed, "seed"), "genkey": Field(text(200), "genkey"),
               "logprobs": Field(_asked(KOBOLD_ALTERNATIVES), "logprobs")},
}
# The chain's settings that Settings does not hold itself (temperature, top_k and top_p it does): kept in `chain`.
CHAIN_NAMES = frozenset(SAMPLING_FIELDS) - {f.name for f in fields(Settings)}
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
    "top_logprobs": Known(integer(0, MAX_ALTERNATIVES), _is(None, 0)),  # KoboldAI's logprobs lists KoboldCpp's 5
    "best_of": Known(integer(1, 20), _is(None, 1)),
    "suffix": Known(text(MAX_PROMPT_CHARS), lambda v: not v),
    # the story front ends' (llama.cpp, KoboldCpp, text-generation-webui)
    "rep_pen_slope": Known(number(0), tuning),
    "penalize_nl": Known(flag, tuning),
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
    "sampler_order": Known(anything, tuning),  # the chain runs in its one order (docs/controls.md)
    "grammar": Known(anything, lambda v: not v),
}


def read(body: Any, dialect: str) -> Settings:
    """The settings a request's JSON body asks for, in `dialect` ("openai", "chat" or "kobold"); Invalid if it is wrong.

    A field sent as null takes its default, as clients send a field they leave unset.
    """
    if not isinstance(body, dict):
        raise Invalid("the request body must be a JSON object")
    applied = APPLIED[dialect]
    values: dict[str, Any] = {}
    chain: dict[str, Any] = {}
    not_applied: list[str] = []
    unknown: list[str] = []
    for name, value in body.items():
        if name in applied:
            if value is not None:
                checked = applied[name].check(name, value)
                to = applied[name].to
                if to is not None:
                    (chain if to in CHAIN_NAMES else values)[to] = checked
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
    return _bounded(replace(DEFAULTS[dialect], **values, chain=tuple(_ranged(chain).items()),
                            not_applied=tuple(not_applied)))


def _ranged(chain: dict[str, Any]) -> dict[str, Any]:
    """A range of no tokens at all (llama.cpp's and KoboldCpp's 0, read as None) turns off the penalties it ranges
    over, as it does there."""
    if "repetition_range" in chain and chain["repetition_range"] is None:
        chain.update(repetition_penalty=1.0, presence_penalty=0.0, frequency_penalty=0.0, repetition_range=0)
    if "dry_range" in chain and chain["dry_range"] is None:
        chain.update(dry_multiplier=0.0, dry_range=0)
    return chain


def _bounded(settings: Settings) -> Settings:
    """`max_tokens` within MAX_TOKENS (said back in `clamped`), top_p 0 as the likeliest token alone, and OpenAI's
    top_logprobs as the number of alternatives (named not applied without logprobs, which it only refines)."""
    clamped = []
    logprobs, not_applied = settings.logprobs, settings.not_applied
    if settings.top_logprobs and logprobs is None:
        not_applied += ("top_logprobs",)
    elif logprobs is not None:
        logprobs = max(logprobs, settings.top_logprobs)
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
    return replace(settings, max_tokens=max_tokens, top_p=top_p, top_k=top_k, logprobs=logprobs,
                   not_applied=not_applied, clamped=tuple(clamped))
