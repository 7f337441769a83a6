"""Where ghostwriter keeps its data: one directory, overridable for tests.

`ASSISTANT_HOME` wins; otherwise the platform's user data directory. Models
live under `models/NAME/`, the corpus cache under `corpora/`.
"""

import os
from pathlib import Path


def data_home() -> Path:
    """The data directory (not created here; writers create what they need)."""
    env = os.environ.get("ASSISTANT_HOME")
    if env:
        return Path(env).expanduser()
    from platformdirs import user_data_path

    return user_data_path("ghostwriter", appauthor=False)


def models_dir() -> Path:
    return data_home() / "models"


def corpora_cache_dir() -> Path:
    return data_home() / "corpora"
