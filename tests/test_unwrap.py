"""corpora.unwrap: hard-wrapped prose is joined into paragraphs, verse and a writer's short lines stay as written."""

from pathlib import Path

from corpora import load_corpus
from corpora.unwrap import hard_wrapped, unwrap

from .conftest import CORPORA, run_cli

# a paragraph of The Eyes Have It as Gutenberg wraps it, at 72 columns or so
GUTENBERG = """\
It was quite by accident I discovered this incredible invasion of Earth
by lifeforms from another planet. As yet, I haven't done anything about
it; I can't think of anything to do. I wrote to the Government, and they
sent back a pamphlet on the repair and maintenance of frame houses.
Anyhow, the whole thing is known; I'm not the first to discover it. Maybe
it's even under control.

I was sitting in my easy-chair, idly turning the pages of a paperbacked
book someone had left on the bus, when I came across the reference that
first put me on the trail. For a moment I didn't respond. It took some
time for the full import to sink in. After I'd comprehended, it seemed
odd I hadn't noticed it right away.
"""

POEM = """\
The sea is calm tonight.
The tide is full, the moon lies fair
Upon the straits; on the French coast the light
Gleams and is gone; the cliffs of England stand,
Glimmering and vast, out in the tranquil bay.
Come to the window, sweet is the night-air!

Only, from the long line of spray
Where the sea meets the moon-blanched land,
Listen! you hear the grating roar
Of pebbles which the waves draw back, and fling,
At their return, up the high strand,
Begin, and cease, and then again begin,
"""

# a writer's draft: short lines of dialogue and a list of scenes, each line ended where the writer ended it
WRITER = """\
Scene list for chapter three:
- Anna at the station
- the letter
- Tom's call, late

"You came."
"I said I would."
"You say a lot of things."
She turned to the window and the rain, and did not look at him again.

Notes: cut the dream. Move the letter earlier?
Ask Jo about trains in 1952.
"""


def test_a_gutenberg_paragraph_is_joined_into_one_line_per_paragraph():
    text, joined = unwrap(GUTENBERG)
    assert joined and hard_wrapped(GUTENBERG)
    paragraphs = text.split("\n\n")
    assert len(paragraphs) == 2 and all("\n" not in p.strip("\n") for p in paragraphs)
    assert "invasion of Earth by lifeforms" in text and "easy-chair, idly turning" in text
    assert text.split() == GUTENBERG.split()  # only line breaks became spaces


def test_verse_stays_as_the_poet_broke_it_even_with_unwrap():
    assert not hard_wrapped(POEM)
    assert unwrap(POEM) == (POEM, False)
    assert unwrap(POEM, force=True) == (POEM, False)
    shakespeare = (CORPORA / "tinyshakespeare" / "input.txt").read_text()[:20_000]
    assert not hard_wrapped(shakespeare) and unwrap(shakespeare, force=True) == (shakespeare, False)


def test_a_writers_short_lines_stay():
    assert unwrap(WRITER) == (WRITER, False)
    assert unwrap(WRITER, force=True) == (WRITER, False)


def test_verse_inside_wrapped_prose_stays_and_a_wrapped_hyphen_joins_bare():
    prose = GUTENBERG.replace("paperbacked\nbook someone had left", "paper-\nbacked book left")
    poem_in_novel = prose + "\n    My first doth affliction denote,\n      Which my second is destin'd to feel\n"
    text, joined = unwrap(poem_in_novel)
    assert joined and "paper-backed book" in text
    assert text.endswith("\n    My first doth affliction denote,\n      Which my second is destin'd to feel\n")


def test_corpora_unwrap_by_default_and_say_so(tmp_path: Path):
    (tmp_path / "wrapped.txt").write_text(GUTENBERG)
    (tmp_path / "draft.txt").write_text(WRITER)
    corpus = load_corpus(str(tmp_path))
    assert {d.name: d.unwrapped for d in corpus.documents} == {"wrapped.txt": True, "draft.txt": False}
    assert load_corpus(str(tmp_path), unwrap=False).documents[1].text == GUTENBERG
    pkd = load_corpus("pkd")
    assert all(d.unwrapped for d in pkd.documents) and not load_corpus("shakespeare").documents[0].unwrapped
    shown = run_cli("corpus", "show", str(tmp_path), env={"COLUMNS": "200"})
    assert "Joined the hard-wrapped lines inside paragraphs of wrapped.txt (--no-unwrap keeps them)." in shown.stdout
    assert "Joined" not in run_cli("corpus", "show", str(tmp_path), "--no-unwrap", env={"COLUMNS": "200"}).stdout
