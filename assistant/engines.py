"""What an exported model says to the engines that load GGUF: its sampling defaults, an Ollama Modelfile, the commands.

One table, SETTINGS, maps each sampling setting to the file's default
(llama.cpp's `general.sampling.*` keys), Ollama's PARAMETER and llama.cpp's
flag. Every setting is written out, including the ones ghostwriter leaves
off: each engine has defaults of its own (Ollama top-k 40, top-p 0.9, a
repetition penalty of 1.1; llama.cpp min-p 0.05), and a model exported from
ghostwriter should write in an engine as it writes here.

The values come from `recorded(card)`: what the model directory records, else
ghostwriter's own defaults. When the writers' `assistant models set` lands,
its settings are read there and each new setting is one more row here.
"""

import re
from dataclasses import dataclass

from contract.modeldir import Card


@dataclass(frozen=True)
class Setting:
    name: str  # ghostwriter's (the card's training record, `assistant generate`'s flag)
    gguf_key: str  # llama.cpp reads these as its defaults where its command line does not set them
    integer: bool
    ollama: str  # the Modelfile's PARAMETER
    flag: str  # llama-cli's and llama-server's
    default: float  # ghostwriter's own when the model records none (`assistant generate`'s; 'off' for the others)


SETTINGS = (
    Setting("temperature", "general.sampling.temp", False, "temperature", "--temp", 0.8),
    Setting("top_k", "general.sampling.top_k", True, "top_k", "--top-k", 0),  # 0: every token
    Setting("top_p", "general.sampling.top_p", False, "top_p", "--top-p", 1.0),
    Setting("min_p", "general.sampling.min_p", False, "min_p", "--min-p", 0.0),
    Setting("repeat_penalty", "general.sampling.penalty_repeat", False, "repeat_penalty", "--repeat-penalty", 1.0),
)


def recorded(card: Card) -> dict[str, float]:
    """Each setting's value for this model: the sampling its training evaluated and chose its ghostwriting
    checkpoint with (the card's training record), else ghostwriter's default."""
    return {s.name: s.default if card.training.get(s.name) is None else card.training[s.name] for s in SETTINGS}


def _value(setting: Setting, value: float) -> str:
    return str(int(value)) if setting.integer else f"{value:g}"


def ollama_name(model: str) -> str:
    """A name `ollama create` takes: lower case letters, digits, '-', '_' and '.'."""
    return re.sub(r"[^a-z0-9._-]+", "-", model.lower()).strip("-._") or "ghostwriter"


def modelfile(gguf_name: str, model: str, about: str, values: dict[str, float], n_ctx: int) -> str:
    """An Ollama Modelfile beside the file: the prompt as it is (a model that continues text, not a chat), the
    settings, and GPT-2's context (Ollama's default is longer, past GPT-2's position embeddings)."""
    lines = [f"# {model}: {about}",
             f"# ollama create {ollama_name(model)} -f {gguf_name.removesuffix('.gguf')}.Modelfile",
             f"FROM ./{gguf_name}", 'TEMPLATE """{{ .Prompt }}"""', f"PARAMETER num_ctx {n_ctx}"]
    lines += [f"PARAMETER {s.ollama} {_value(s, values[s.name])}" for s in SETTINGS]
    lines.append('PARAMETER stop "<|endoftext|>"')
    return "\n".join(lines) + "\n"


def instructions(gguf_name: str, model: str, about: str, values: dict[str, float], n_ctx: int) -> str:
    """The few commands each engine needs, as a Markdown file beside the model."""
    name, stem = ollama_name(model), gguf_name.removesuffix(".gguf")
    flags = " ".join(f"{s.flag} {_value(s, values[s.name])}" for s in SETTINGS)
    shown = ", ".join(f"{s.name.replace('_', '-')} {_value(s, values[s.name])}" for s in SETTINGS)
    return f"""# {model}

{about}. It continues text: give it the start of a passage, not a question.
Its context is {n_ctx} tokens. It writes best with {shown}
(the file carries these as its defaults; each engine below is told them too).

## Ollama

    ollama create {name} -f {stem}.Modelfile
    ollama run {name} "The robot walked into the kitchen"

## LM Studio

    lms import {gguf_name}

Then load it, set the context length to {n_ctx}, and write in a text-completion view (it has no chat template).

## KoboldCpp

    koboldcpp --model {gguf_name} --contextsize {n_ctx}

Then open http://localhost:5001 and write in Story mode.

## llama.cpp

    llama-completion -m {gguf_name} -c {n_ctx} -n 200 {flags} -p "The robot walked into the kitchen"
    llama-server -m {gguf_name} -c {n_ctx} {flags}

(llama.cpp builds before December 2025 have no llama-completion: use `llama-cli -no-cnv` with the same flags.)
llama-server answers at http://localhost:8080 (`/completion`, and OpenAI's `/v1/completions`).
"""
