"""Getting GPT-2 weights and its tokenizer, and never silently getting random ones.

A base is a Hugging Face hub name (`gpt2`, `gpt2-medium`, `OWNER/NAME`) or a
directory saved with `save_pretrained`. Loading goes through transformers, so
the usual cache (`HF_HOME`, `HF_HUB_CACHE`) and offline switches
(`HF_HUB_OFFLINE=1`) apply. A base in the cache is loaded from it without
asking the hub; one that is not is downloaded, after one quick look at
whether the hub answers at all, so that a writer without a network hears so
in seconds instead of after the hub client's half-minute of retries.
When the base cannot be had, the error says how to provide it; there is no
fallback to random weights: that takes an explicit `--from-scratch`.
"""

import contextlib
import hashlib
import re
import warnings
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

from corpora import UserError
from corpora.suggest import did_you_mean

# GPT-2's own names on the hub; any other hub model is named OWNER/NAME
HUB_GPT2 = ("gpt2", "gpt2-medium", "gpt2-large", "gpt2-xl", "distilgpt2")
_OWNER_NAME = re.compile(r"[A-Za-z0-9][\w.-]*/[\w.-]+")
HUB_PROBE_S = 3.0  # how long the look at the hub waits for an answer


@contextlib.contextmanager
def quiet_transformers() -> Iterator[None]:
    """transformers' own progress bars and advice would interleave with ours."""
    from transformers.utils import logging

    level = logging.get_verbosity()
    logging.set_verbosity_error()
    logging.disable_progress_bar()
    try:
        with warnings.catch_warnings():  # peft asks transformers a question transformers calls deprecated
            warnings.filterwarnings("ignore", message=".*is_gradient_checkpointing", category=FutureWarning)
            # GPT-2's blocks are Conv1D (fan_in_fan_out); peft corrects it by itself for a Linear such as lm_head
            warnings.filterwarnings("ignore", message="fan_in_fan_out is set to True", category=UserWarning)
            yield
    finally:
        logging.set_verbosity(level)
        logging.enable_progress_bar()


def is_hub_name(name: str) -> bool:
    """Whether a name is one to ask the hub for: GPT-2's own (`gpt2`, `distilgpt2`...) or OWNER/NAME.

    Anything else that is not a local directory is a writer's mistyped model
    name, which the hub cannot help with.
    """
    owner = name.partition("/")[0]  # models/pkd-char, with a local models/ folder, is a path mistyped
    return name in HUB_GPT2 or (_OWNER_NAME.fullmatch(name) is not None and not Path(owner).expanduser().exists())


def base_location(base: str) -> str:
    """A local directory as an absolute path, or a hub name as given."""
    path = Path(base).expanduser()
    if path.is_dir():
        return str(path.resolve())
    if path.exists() or base.startswith((".", "/", "~")) or base.count("/") > 1:
        raise UserError(f"base {base!r} is not a directory saved with save_pretrained")
    if not is_hub_name(base):
        raise UserError(f"base {base!r} is neither a directory saved with save_pretrained nor a hub name: "
                        + did_you_mean(base, HUB_GPT2) + f"GPT-2's are {', '.join(HUB_GPT2)}, "
                        "other hub models are OWNER/NAME")
    return base


class BaseUnavailable(UserError):
    """A base model that cannot be had; `reason` is what went wrong, in one line.

    The message ends with the way out for what the writer was doing: training
    (`for_writing=False`) can go on at once with a char model, which needs no
    download; writing can use a model already trained.
    """

    def __init__(self, base: str, what: str, error: Exception | str, for_writing: bool = False):
        from huggingface_hub.constants import HF_HUB_CACHE

        text = str(error).strip()
        self.base, self.what = base, what
        self.reason = (text.splitlines()[0] if text else type(error).__name__)[:200]
        if Path(base).expanduser().is_dir():
            advice = "a base directory holds what save_pretrained writes: config.json, the weights and the tokenizer"
        else:
            advice = (f"It is downloaded once into the Hugging Face cache ({HF_HUB_CACHE}) and works offline after "
                      "that: run this again while online" + (
                          ", or write with a model you trained (see `assistant models`)" if for_writing else
                          ". To train now with no download, add --model char (a char model learns from your corpus "
                          "alone); or pass --base PATH to a directory saved with save_pretrained"))
        super().__init__(f"cannot load the {what} of base model {base!r} ({self.reason}). {advice}")

    def for_writing(self) -> "BaseUnavailable":
        """The same failure, with the way out for a writer who wanted to write rather than train."""
        return BaseUnavailable(self.base, self.what, self.reason, for_writing=True)


def hub_unreachable() -> str | None:
    """Why the hub cannot be reached right now, in one line; None when it answers.

    One request with a short timeout, through the hub client's own HTTP
    session (so proxies and HF_ENDPOINT apply). Asked anew each time: a REPL
    that started offline may be online by its next model.
    """
    from huggingface_hub import constants
    from huggingface_hub.utils import get_session

    try:
        get_session().head(constants.ENDPOINT, timeout=HUB_PROBE_S)
    except Exception as e:  # connection refused, no route, DNS, timeout, TLS: all mean no download now
        return f"the Hugging Face hub at {constants.ENDPOINT} cannot be reached: {str(e).strip() or type(e).__name__}"
    return None


def _from_pretrained(load: Callable[..., Any], base: str, what: str) -> Any:
    """`load(location)` for a base: from its directory, or from the cache without asking the hub, or from the hub
    when it answers; a BaseUnavailable otherwise, within seconds rather than after the hub client's retries."""
    from huggingface_hub import is_offline_mode

    location = base_location(base)
    try:
        if Path(location).is_dir():
            return load(location)
        with contextlib.suppress(OSError, ValueError):
            return load(location, local_files_only=True)
        if is_offline_mode():
            raise BaseUnavailable(base, what, "not in the cache, and HF_HUB_OFFLINE=1 forbids downloading it")
        if (unreachable := hub_unreachable()) is not None:
            raise BaseUnavailable(base, what, f"not in the cache, and {unreachable}")
        return load(location)
    except (OSError, ValueError) as e:
        raise BaseUnavailable(base, what, e) from None


def load_tokenizer(base: str):  # -> PreTrainedTokenizerFast
    from transformers import AutoTokenizer

    def load(location: str, **hub: Any):
        with quiet_transformers():
            return AutoTokenizer.from_pretrained(location, use_fast=True, **hub)

    tokenizer = _from_pretrained(load, base, "tokenizer")
    if not tokenizer.is_fast:
        raise UserError(f"base {base!r} has no fast tokenizer (tokenizer.json or vocab.json + merges.txt)")
    return tokenizer


def load_config(base: str, overrides: dict):  # -> GPT2Config
    from transformers import AutoConfig

    def load(location: str, **hub: Any):
        with quiet_transformers():
            return AutoConfig.from_pretrained(location, **overrides, **hub)

    config = _from_pretrained(load, base, "configuration")
    if config.model_type != "gpt2":
        raise UserError(f"base {base!r} is a {config.model_type} model; ghostwriter retrains GPT-2 models")
    # A ghostwriter model's config.json also holds its name, corpus and training record (and, first, its format):
    # a model trained or merged from it keeps only the GPT-2 configuration, not its base's record.
    if hasattr(config, "format"):
        for key in set(config.to_dict()) - set(type(config)().to_dict()):
            delattr(config, key)
    return config


def load_pretrained(base: str, overrides: dict):  # -> GPT2LMHeadModel
    """The base's trained weights; a one-line error, never random weights, when they cannot be had."""
    from transformers import AutoModelForCausalLM

    config = load_config(base, overrides)

    def load(location: str, **hub: Any):
        with quiet_transformers():
            return AutoModelForCausalLM.from_pretrained(location, config=config, attn_implementation="sdpa", **hub)

    return _from_pretrained(load, base, "weights")


def weights_fingerprint(model) -> str:
    """A hash of the first values of every tensor: tells two sets of weights apart in milliseconds, so an adapter
    is never put on a base other than the one it was trained on."""
    digest = hashlib.sha256()
    for name, tensor in sorted(model.named_parameters()):  # parameters only: buffers come and go with versions
        digest.update(name.encode())
        digest.update(tensor.detach().flatten()[:1024].float().cpu().numpy().tobytes())
    return digest.hexdigest()[:16]


def new_model(config):  # -> GPT2LMHeadModel
    """Random initialisation, for --from-scratch only."""
    from transformers import AutoModelForCausalLM

    try:
        with quiet_transformers():
            return AutoModelForCausalLM.from_config(config, attn_implementation="sdpa")
    except ValueError as e:  # a shape that does not fit together, e.g. --n-embd not a multiple of the heads
        raise UserError(f"cannot build that GPT-2 (n_embd {config.n_embd}, n_head {config.n_head}): {e}") from None
