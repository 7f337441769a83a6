"""Where ghostwriter keeps its data: one directory, overridable for tests.

`ASSISTANT_HOME` wins; otherwise the platform's user data directory. Models
live under `models/NAME/`, the corpus cache under `corpora/`.
"""

import os
from pathlib import Path

from .errors import UserError


def data_home() -> Path:
    """The data directory (not created here; writers create what they need).

    One that exists but is no directory is refused here, once, rather than by
    every reader and writer below it with an error about a path inside it.
    """
    env = os.environ.get("ASSISTANT_HOME")
    if env:
        home = Path(env).expanduser()
    else:
        from platformdirs import user_data_path

        home = user_data_path("ghostwriter", appauthor=False)
    if home.exists() and not home.is_dir():
        where = "ASSISTANT_HOME" if env else "the data directory"
        raise UserError(f"{where} {home} is a file, not a directory: point ASSISTANT_HOME at a directory")
    return home


def models_dir() -> Path:
    return data_home() / "models"


def corpora_cache_dir() -> Path:
    return data_home() / "corpora"
