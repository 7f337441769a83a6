"""The memorization check: suffix array, longest shared span, the cached index, the commands."""

import io
import json
import random
import re
import shutil
import time
import warnings
from pathlib import Path

import pytest
from rich.console import Console

from assistant.samples.store import Store
from assistant.samples.views import sample_table
from contract import modeldir
from corpora import load_corpus, suffixarray
from corpora.index import CorpusIndex, MemorizationWarning, cached_index, index_folder

from .conftest import run_cli
from .test_store import row

JUNK = "§¶"  # characters no corpus here holds, so a span cannot grow past them


def _card(config: dict) -> modeldir.Card:
    """A model's card holding only what the memorization check reads."""
    return modeldir.from_json({"kind": "char", "name": "m", **config}, None)


def index_of(card: modeldir.Card) -> CorpusIndex | None:
    return card.corpus_index()


def test_suffix_array_agrees_with_sorting_the_suffixes():
    rng = random.Random(0)
    texts = ["", "a", "banana", "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa", "ab" * 40 + "\0ab" * 3]
    texts += ["".join(rng.choice("ab\0c ") for _ in range(rng.randint(1, 90))) for _ in range(150)]
    for text in texts:
        assert suffixarray.build(text).tolist() == sorted(range(len(text)), key=lambda i: text[i:]), text


def test_longest_match_finds_the_longest_shared_substring():
    text = "abracadabra, said the cat"
    sa = suffixarray.build(text)
    assert suffixarray.longest_match(text, sa, "xxcadabxx cut") == suffixarray.Match(5, 2, 4)
    assert suffixarray.longest_match(text, sa, "zzz") is None
    assert suffixarray.longest_match(text, sa, "") is None
    rng = random.Random(5)
    for _ in range(300):
        text = "".join(rng.choice("abc") for _ in range(rng.randint(0, 60)))
        sample = "".join(rng.choice("abcd") for _ in range(rng.randint(0, 30)))
        match = suffixarray.longest_match(text, suffixarray.build(text), sample)
        longest = max((j - i for i in range(len(sample)) for j in range(i + 1, len(sample) + 1) if sample[i:j] in text),
                      default=0)
        assert (match.length if match else 0) == longest
        if match:
            assert text[match.text_offset :][: match.length] == sample[match.sample_offset :][: match.length]


@pytest.fixture(scope="module")
def slice_index(pkd_slice: Path) -> tuple:
    corpus = load_corpus(str(pkd_slice))
    return corpus, CorpusIndex.build(corpus)


def test_a_passage_cut_from_the_corpus_is_found_with_its_exact_span_and_document(slice_index):
    corpus, index = slice_index
    doc = corpus.documents[1]
    passage = doc.text[2000:2150]
    span = index.longest_span(JUNK + passage + JUNK + "the end")
    assert (span.length, span.sample_offset, span.document, span.offset) == (150, 2, doc.name, 2000)
    before, match, after = index.context(span, 30)
    assert match == passage and before == doc.text[1970:2000] and after == doc.text[2150:2180]


def test_a_random_string_is_not_found(slice_index):
    _, index = slice_index
    rng = random.Random(1)
    sample = "".join(rng.choice("abcdefghijklmnopqrstuvwxyz    ") for _ in range(1000))
    assert index.longest_span(sample).length < 10


def test_the_index_is_cached_by_corpus_checksum(pkd_slice: Path, tmp_path: Path):
    corpus = load_corpus(str(pkd_slice))
    config = {"corpus": {"name": corpus.name, "source": str(pkd_slice), "checksum": corpus.checksum, "unwrap": "auto"}}
    built = index_of(_card(config))
    assert (index_folder(corpus.checksum) / "sa.npy").is_file()
    cached_index.cache_clear()
    moved = {"corpus": {**config["corpus"], "source": str(tmp_path / "gone")}}  # the cache alone answers
    loaded = index_of(_card(moved))
    assert loaded is not built and loaded.sa.tolist() == built.sa.tolist() and loaded.text == built.text
    assert index_of(_card({})) is None  # no corpus, no check


def test_a_missing_or_changed_corpus_skips_the_check_with_a_warning(pkd_slice: Path, tmp_path: Path):
    folder = tmp_path / "novel"
    shutil.copytree(pkd_slice, folder)
    checksum = load_corpus(str(folder)).checksum
    (folder / "the-eyes-have-it.txt").write_text("Rewritten since.\n")
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        assert index_of(_card({"corpus": {"name": "novel", "source": str(folder), "checksum": checksum,
                                                "unwrap": "auto"}})) is None
        gone = {"name": "novel", "source": str(tmp_path / "nowhere"), "checksum": "0" * 64}
        assert index_of(_card({"corpus": gone})) is None
    messages = [str(w.message) for w in caught if w.category is MemorizationWarning]
    assert len(messages) == 2 and "has changed" in messages[0] and "not found" in messages[1]


def test_austen_answers_a_1000_character_sample_in_well_under_100_ms():
    corpus = load_corpus("austen")
    index = CorpusIndex.build(corpus)
    doc = corpus.documents[3]
    rng = random.Random(2)
    sample = "".join(rng.choice("abcdefghij ") for _ in range(500)) + JUNK + doc.text[50_000:50_500]
    timings = []
    for _ in range(3):
        start = time.perf_counter()
        span = index.longest_span(sample)
        timings.append(time.perf_counter() - start)
    assert (span.length, span.document, span.offset) == (500, doc.name, 50_000)
    assert min(timings) < 0.1


def test_copying_samples_are_flagged_in_listings():
    with Store() as store:
        store.add(row(" copied", copied_chars=73, copied_document="the-gun.txt"))
        store.add(row(" own", copied_chars=12))
        samples = store.find()
    console = Console(file=io.StringIO(), width=200)
    console.print(sample_table(samples, 50, console))
    flagged = [line for line in console.file.getvalue().splitlines() if "copies" in line]
    assert len(flagged) == 1 and "copies 73" in flagged[0] and "copied" in flagged[0]


def test_memorization_and_check_commands(trained_model: Path):
    report = run_cli("memorization", str(trained_model), "-n", "3", "-l", "200", "--seed", "4")
    assert report.returncode == 0, report.stderr
    assert re.search(r"tiny-pkd@ghostwriting, step \d+: 0 of 3 samples \(0%\) copy 50 or more characters of pkd-slice0",
                     " ".join(report.stdout.split()))
    assert report.stderr.count("longest copied span") == 3
    listed = [json.loads(line) for line in run_cli("samples", "list", "--json").stdout.splitlines()]
    assert len(listed) == 3 and all(s["mode"] == "unconditional" and 0 < s["copied_chars"] < 50 for s in listed)
    check = run_cli("samples", "check", str(listed[0]["id"]), "--context", "20")
    assert check.returncode == 0 and "is the model's own" in check.stdout
    assert f"in {listed[0]['copied_document']} at character" in check.stdout


def test_a_file_named_like_a_catalogue_corpus_is_found_by_its_path(tmp_path: Path):
    from corpora import load_corpus
    from corpora.index import _find_corpus

    (tmp_path / "pkd.txt").write_text("Not Philip K. Dick at all, but a writer's own novel called pkd.txt.\n")
    mine = load_corpus(str(tmp_path / "pkd.txt"))
    assert mine.name == "pkd"
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        found = _find_corpus(mine.checksum, mine.name, mine.source)
    assert found is not None and found.checksum == mine.checksum
