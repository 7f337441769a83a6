"""Ghostwriting a sample: the writer says they published it (tag `ghostwritten`) and gets its text to paste.

Shared by `assistant samples ghostwrite` and the REPL's /ghostwrite, so both
refuse the same samples and print the same text. A sample that copies its
corpus word for word is refused unless the writer confirms: publishing an
author's passage as one's own is the one mistake this tool must not make
quietly.
"""

import warnings

from corpora import UserError

from .recording import check_stored, stored_span
from .store import GHOSTWRITTEN, Sample, Store
from .views import copy_warning


class UncheckedWarning(UserWarning):
    """A sample was ghostwritten without a copying check: its corpus cannot be found."""


def ghostwrite(store: Store, sample_id: int, min_span: int, anyway: bool, confirm: str) -> tuple[Sample, str | None]:
    """Tag the sample ghostwritten unless it copies `min_span` characters of its corpus; it and its copy warning.

    A copying sample is refused with a UserError that names the document and
    the passage and says how to confirm (`confirm`, in the front end's words);
    with `anyway` it is published, and the warning returned for the front end
    to show. A sample whose check was skipped when it was written (its corpus
    was missing) is checked now.
    """
    sample = store.get(sample_id)
    if sample.copied_chars is None and sample.corpus is not None:
        try:
            check_stored(store, sample)
        except UserError as e:
            warnings.warn(f"{e}; ghostwritten without a copying check", UncheckedWarning, stacklevel=2)
        sample = store.get(sample_id)
    warning = copy_warning(stored_span(sample), sample.text, min_span)
    if warning and not anyway:
        raise UserError(f"#{sample.id} {warning}; not tagged {GHOSTWRITTEN}. {confirm} to publish it all the same")
    store.tag(sample_id, [GHOSTWRITTEN])
    return store.get(sample_id), warning and f"#{sample.id} {warning}"


def paste_text(sample: Sample) -> str:
    """The sample exactly as it was written (prompt and continuation), with no wrapping or markup: it is for pasting."""
    return sample.prompt + sample.text + "\n"
