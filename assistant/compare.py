"""One prompt through several models, for side-by-side reading (`assistant compare`, the REPL's /compare)."""

import os
from typing import Any

from .generation import TextModel
from .samples.recording import written
from .samples.store import Sample, Store


def compare(models: list[TextModel], prompt: str, *, source: str, log: bool = True,
            **params: Any) -> list[tuple[str, Sample | None, str]]:
    """Each model's name, stored sample (None when not logged) and continuation, with the same parameters and seed."""
    if params.get("seed") is None:
        params["seed"] = int.from_bytes(os.urandom(4), "little")  # the same draw for every model, so they differ by model alone
    results = []
    for model in models:
        result, sample_id = written(model, prompt, source, log, **params)
        sample = None
        if sample_id is not None:
            with Store() as store:
                sample = store.get(sample_id)
        results.append((model.name, sample, result.text))
    return results
