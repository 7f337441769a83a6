"""The named corpora ghostwriter knows how to fetch.

Each entry lists its documents with the URL they are downloaded from and the
file name they have in a local corpora directory laid out like the project's
shared data (`ASSISTANT_CORPORA`): `<folder>/<file>`.
"""

import os
from dataclasses import dataclass

GUTENBERG = "https://www.gutenberg.org"


def gutenberg_base() -> str:
    """The Gutenberg site or a mirror of it (`ASSISTANT_GUTENBERG_MIRROR`)."""
    return os.environ.get("ASSISTANT_GUTENBERG_MIRROR", GUTENBERG).rstrip("/")


@dataclass(frozen=True)
class Document:
    """One file of a catalogue corpus."""

    file: str
    title: str
    ebook: int | None = None
    url: str | None = None

    def download_url(self) -> str:
        if self.ebook is not None:
            return f"{gutenberg_base()}/cache/epub/{self.ebook}/pg{self.ebook}.txt"
        assert self.url is not None
        return self.url


@dataclass(frozen=True)
class Entry:
    name: str
    author: str
    description: str
    folder: str
    documents: tuple[Document, ...]


def _pg(file: str, title: str, ebook: int) -> Document:
    return Document(file=file, title=title, ebook=ebook)


CATALOGUE: dict[str, Entry] = {
    e.name: e
    for e in (
        Entry(
            name="pkd",
            author="Philip K. Dick",
            description="13 short stories and novellas (1952-54), Project Gutenberg",
            folder="pkd",
            documents=(
                _pg("beyond-lies-the-wub.txt", "Beyond Lies the Wub", 28554),
                _pg("beyond-the-door.txt", "Beyond the Door", 28644),
                _pg("the-crystal-crypt.txt", "The Crystal Crypt", 28698),
                _pg("the-defenders.txt", "The Defenders", 28767),
                _pg("the-gun.txt", "The Gun", 29132),
                _pg("the-skull.txt", "The Skull", 30255),
                _pg("the-eyes-have-it.txt", "The Eyes Have It", 31516),
                _pg("second-variety.txt", "Second Variety", 32032),
                _pg("the-variable-man.txt", "The Variable Man", 32154),
                _pg("mr-spaceship.txt", "Mr. Spaceship", 32522),
                _pg("piper-in-the-woods.txt", "Piper in the Woods", 32832),
                _pg("tony-and-the-beetles.txt", "Tony and the Beetles", 40964),
                _pg("the-hanging-stranger.txt", "The Hanging Stranger", 41562),
            ),
        ),
        Entry(
            name="austen",
            author="Jane Austen",
            description="her 7 works on Project Gutenberg",
            folder="austen",
            documents=(
                _pg("pride-and-prejudice.txt", "Pride and Prejudice", 1342),
                _pg("sense-and-sensibility.txt", "Sense and Sensibility", 161),
                _pg("emma.txt", "Emma", 158),
                _pg("mansfield-park.txt", "Mansfield Park", 141),
                _pg("northanger-abbey.txt", "Northanger Abbey", 121),
                _pg("persuasion.txt", "Persuasion", 105),
                _pg("lady-susan.txt", "Lady Susan", 946),
            ),
        ),
        Entry(
            name="shakespeare",
            author="William Shakespeare",
            description="char-rnn's tiny-shakespeare (1.1 MB of excerpts from the plays)",
            folder="tinyshakespeare",
            documents=(
                Document(
                    file="input.txt",
                    title="Tiny Shakespeare",
                    url="https://raw.githubusercontent.com/karpathy/char-rnn/master/data/tinyshakespeare/input.txt",
                ),
            ),
        ),
    )
}
