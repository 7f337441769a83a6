"""Several authors' corpora as one, for one model that writes as any of them (`assistant finetune pkd,austen
--author-tags`).

Each corpus keeps its documents, named AUTHOR/DOCUMENT so that a copied span
says whose text it copies; with tags, each document starts with its author's
tag, a line such as `<|austen|>` that every kind can read and write (GPT-2
reads it as a few ordinary tokens, a char model as characters it then knows),
so that `--author austen` puts it before a prompt. The model's card records
the tags (its `authors`). The kinds split each author's run of documents on
its own and join the splits (Corpus.authors), so every author has validation
text, not only the last one. An author is known by its corpus's name.
"""

from pathlib import Path

from .catalogue import CATALOGUE
from .errors import UserError
from .load import Corpus, Document


def tag(author: str) -> str:
    """The line before each of an author's documents."""
    return f"<|{author}|>\n"


def parts(name: str) -> list[str] | None:
    """The corpora a name joins (`pkd,austen`), or None for one corpus (a path whose name holds a comma is one)."""
    if "," not in name or Path(name).expanduser().exists():
        return None
    names = [p.strip() for p in name.split(",")]
    if any(not n for n in names) or len(set(names)) != len(names):
        raise UserError(f"several corpora are named A,B (each once), got {name!r}")
    return names


def check_tags(name: str, tags: bool) -> None:
    """Tags are for several corpora (`pkd,austen`): with one, a UserError. The CLI asks this before it imports the
    training stack, so that the mistake costs no seconds of importing."""
    if tags and parts(name) is None:
        raise UserError(f"--author-tags is for several corpora, each an author's (e.g. pkd,austen); got {name}")


def joined(names_given: list[str], corpora: list[Corpus], tags: bool) -> Corpus:
    """The corpora as one, each document after its author's tag when `tags` (see the module); its source names each
    corpus as it loads again (a catalogue name, else its path), so that the model's corpus is found again."""
    names = [c.name for c in corpora]
    if len(set(names)) != len(names):
        raise UserError(f"two of the corpora have one name ({', '.join(names)}): an author is known by its corpus's name")
    documents = tuple(Document(f"{c.name}/{d.name}", (tag(c.name) if tags else "") + d.text, d.title, d.encoding,
                               d.unwrapped, c.name) for c in corpora for d in c.documents)
    source = ",".join(given if given in CATALOGUE else c.source for given, c in zip(names_given, corpora, strict=True))
    skipped = tuple(s for c in corpora for s in c.skipped)
    return Corpus(",".join(names), documents, source, skipped)


def card_tags(corpus: Corpus, tags: bool) -> dict[str, str]:
    """The tags a model trained on `corpus` records in its card (none without --author-tags)."""
    return {author: tag(author) for author, _ in corpus.authors() if author is not None} if tags else {}
