"""Getting GPT-2 weights and its tokenizer, and never silently getting random ones.

A base is a Hugging Face hub name (`gpt2`, `gpt2-medium`) or a directory saved
with `save_pretrained`. Loading goes through transformers, so the usual cache
(`HF_HOME`, `HF_HUB_CACHE`) and offline switches (`HF_HUB_OFFLINE=1`) apply.
When the base cannot be had, the error says how to provide it; there is no
fallback to random weights: that takes an explicit `--from-scratch`.
"""

import contextlib
import hashlib
import warnings
from collections.abc import Iterator
from pathlib import Path

from corpora import UserError


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


def base_location(base: str) -> str:
    """A local directory as an absolute path, or a hub name as given."""
    path = Path(base).expanduser()
    if path.is_dir():
        return str(path.resolve())
    if path.exists() or base.startswith((".", "/", "~")) or base.count("/") > 1:
        raise UserError(f"base {base!r} is not a directory saved with save_pretrained")
    return base


class BaseUnavailable(UserError):
    """A base model that cannot be had; `reason` is what transformers said, in one line."""

    def __init__(self, base: str, what: str, error: Exception):
        from huggingface_hub.constants import HF_HUB_CACHE

        text = str(error).strip()
        self.reason = (text.splitlines()[0] if text else type(error).__name__)[:200]
        super().__init__(
            f"cannot load the {what} of base model {base!r} ({self.reason}). With internet it downloads once into the "
            f"Hugging Face cache ({HF_HUB_CACHE}); offline, pass --base PATH to a directory saved with save_pretrained"
        )


def load_tokenizer(base: str):  # -> PreTrainedTokenizerFast
    from transformers import AutoTokenizer

    location = base_location(base)
    try:
        with quiet_transformers():
            tokenizer = AutoTokenizer.from_pretrained(location, use_fast=True)
    except (OSError, ValueError) as e:
        raise BaseUnavailable(base, "tokenizer", e) from None
    if not tokenizer.is_fast:
        raise UserError(f"base {base!r} has no fast tokenizer (tokenizer.json or vocab.json + merges.txt)")
    return tokenizer


def load_config(base: str, overrides: dict):  # -> GPT2Config
    from transformers import AutoConfig

    location = base_location(base)
    try:
        with quiet_transformers():
            config = AutoConfig.from_pretrained(location, **overrides)
    except (OSError, ValueError) as e:
        raise BaseUnavailable(base, "configuration", e) from None
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
    location = base_location(base)
    try:
        with quiet_transformers():
            return AutoModelForCausalLM.from_pretrained(location, config=config, attn_implementation="sdpa")
    except (OSError, ValueError) as e:
        raise BaseUnavailable(base, "weights", e) from None


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
