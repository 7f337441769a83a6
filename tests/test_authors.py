"""One model trained on several authors with their tags (corpora.authors, `finetune A,B --author-tags`), written as
one of them (`--author`, `--guidance`), on a tiny real char model over two synthetic authors of distinct words."""

import random
from pathlib import Path
from typing import TYPE_CHECKING

import pytest

if TYPE_CHECKING:
    from finetune.ghostwriting.authors import Authors

from assistant.generation import load_model
from corpora import load_corpus
from tests.conftest import TINY, run_cli

SEA = ["the", "ship", "sailed", "over", "grey", "sea", "storm", "wave", "captain", "rope", "deck", "salt", "wind"]
GARDEN = ["a", "cat", "sat", "in", "green", "garden", "rose", "tulip", "bee", "honey", "lawn", "bird", "sun"]


def prose(words: list[str], chars: int, seed: int) -> str:
    rng = random.Random(seed)
    sentences = []
    while sum(map(len, sentences)) < chars:
        sentences.append(" ".join(rng.choice(words) for _ in range(rng.randint(5, 12))).capitalize() + ".")
    return " ".join(sentences) + "\n"


@pytest.fixture(scope="module")
def authors(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path, Path]:
    """Two authors' folders (sea, garden), and a tiny char model trained on both with their tags.

    One LSTM layer at batch 16 and a high learning rate learn what the tags mean in 200 steps (some 10 s on one
    core); two layers at batch 32 took twice as long and after 120 steps wrote much the same for both tags."""
    from finetune.config import FinetuneConfig
    from finetune.progress import Reporter
    from finetune.run import finetune
    from kinds.charlstm.options import CharOptions

    root = tmp_path_factory.mktemp("authors")
    for name, words in (("sea", SEA), ("garden", GARDEN)):
        (root / name).mkdir()
        for i in range(40):  # short documents: the tag starts every 600 characters, so the model learns what it means
            (root / name / f"{i:02}.txt").write_text(prose(words, 600, seed=i))
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("ASSISTANT_HOME", str(root / "home"))
        finetune(FinetuneConfig(corpus=f"{root / 'sea'},{root / 'garden'}", model="char", out=root / "model",
                                author_tags=True, max_steps=200, eval_every=100, sample_every=1000, seed=7,
                                ghostwriting_every=0,
                                options=CharOptions(size="tiny", layers=1, hidden=128, batch_size=16, lr=2e-2)),
                       Reporter())
    return root / "sea", root / "garden", root / "model"


@pytest.fixture(scope="module")
def classifier(authors: tuple[Path, Path, Path], tmp_path_factory: pytest.TempPathFactory) -> "Authors":
    """The per-author style classifier (finetune.ghostwriting.authors) of the two authors, fitted once: each
    against the other alone, with no catalogue corpus on this machine (those took a minute to read and count)."""
    from finetune.ghostwriting.authors import Authors

    sea, garden, _ = authors
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("ASSISTANT_CORPORA", str(tmp_path_factory.mktemp("no-catalogue")))
        mp.setenv("ASSISTANT_HOME", str(tmp_path_factory.mktemp("home")))
        fitted = Authors.fit([load_corpus(str(sea)), load_corpus(str(garden))])
    assert fitted.accuracy["sea"]["extra_reference"] > 0 and fitted.accuracy["garden"]["reference_corpora"] == []
    return fitted


def test_the_split_is_each_authors_own_and_the_card_records_the_tags(authors: tuple[Path, Path, Path]) -> None:
    sea, garden, path = authors
    model = load_model(path, "cpu")
    assert model.card.extra["authors"] == {"sea": "<|sea|>\n", "garden": "<|garden|>\n"}
    corpus = load_corpus(f"{sea},{garden}", author_tags=True)
    assert corpus.documents[0].text.startswith("<|sea|>\n") and corpus.documents[-1].name == "garden/39.txt"
    val = model.card.split["val"]  # one validation range in each author's text: both are validated on
    assert len(val) == 2 and val[0][1] <= val[1][0]


def test_author_samples_are_attributed_to_that_author_more_than_the_others(authors: tuple[Path, Path, Path],
                                                                            classifier: "Authors") -> None:
    model = load_model(authors[2], "cpu")
    written = {author: [model.generate("", author=author, max_new_chars=150, seed=i, temperature=0.8) for i in range(8)]
               for author in ("sea", "garden")}
    shares = {author: classifier.shares(texts) for author, texts in written.items()}
    assert shares["sea"]["sea"] > shares["garden"]["sea"] and shares["garden"]["garden"] > shares["sea"]["garden"]
    guided = [model.generate("", author="garden", guidance=2.0, max_new_chars=150, seed=i) for i in range(8)]
    assert classifier.shares(guided)["garden"] > shares["sea"]["garden"]


def test_copying_is_checked_against_every_authors_corpus(authors: tuple[Path, Path, Path]) -> None:
    sea, garden, path = authors
    index = load_model(path, "cpu").card.corpus_index()
    for folder in (sea, garden):
        passage = (folder / "07.txt").read_text()[100:200]
        span = index.longest_span(passage)
        assert span is not None and span.length == 100 and span.document == f"{folder.name}/07.txt"


def test_author_errors_are_one_line(authors: tuple[Path, Path, Path], trained_model: Path) -> None:
    _, _, path = authors
    unknown = run_cli("generate", str(path), "--author", "sae", "--length", "10", "--no-log")
    assert unknown.returncode == 2 and "knows no author 'sae': its authors are sea, garden; did you mean 'sea'?" in unknown.stderr
    untagged = run_cli("generate", str(trained_model), "--author", "sea", "--length", "10", "--no-log")
    assert untagged.returncode == 2 and "--author-tags" in untagged.stderr and "Traceback" not in untagged.stderr
    alone = run_cli("generate", str(path), "--guidance", "2", "--length", "10", "--no-log")
    assert alone.returncode == 2 and "give --author too" in alone.stderr


def test_finetune_author_tags_on_one_corpus_is_refused(tmp_path: Path) -> None:
    (tmp_path / "one.txt").write_text(prose(SEA, 5000, 0))
    result = run_cli("finetune", str(tmp_path / "one.txt"), "--author-tags", *TINY, "--max-steps", "1")
    assert result.returncode == 2 and "--author-tags is for several corpora" in result.stderr


def test_guidance_over_http_writes_what_the_cli_writes(authors: tuple[Path, Path, Path], isolated_home: Path) -> None:
    import openai

    from tests.test_serve import serving

    path = authors[2]
    with serving(str(path)) as (url, _):
        client = openai.OpenAI(base_url=f"{url}/v1", api_key="unused", max_retries=0)
        steer = {"author": "garden", "guidance": 2.0}
        guided = client.completions.create(model=str(path), prompt="The", max_tokens=40, seed=5, temperature=0.8,
                                           extra_body=steer)
        prompted = client.completions.create(model=str(path), prompt="The", max_tokens=40, seed=5, temperature=0.8,
                                             extra_body={"prompt_guidance": 0})
        with pytest.raises(openai.BadRequestError, match="knows no author 'sae'"):
            client.completions.create(model=str(path), prompt="The", max_tokens=4, extra_body={"author": "sae"})
        with pytest.raises(openai.BadRequestError, match="guidance"):
            client.completions.create(model=str(path), prompt="The", max_tokens=4, extra_body={"guidance": -1})
    assert "ghostwriter" not in guided.model_extra or not guided.model_extra["ghostwriter"].get("not_applied")
    cli = run_cli("generate", str(path), "-p", "The", "--author", "garden", "--guidance", "2", "--tokens", "40",
                  "--seed", "5", "-t", "0.8", "--no-echo", "--no-log")
    assert cli.returncode == 0 and cli.stdout == guided.choices[0].text + "\n" and len(guided.choices[0].text) == 40
    model = load_model(path, "cpu")
    assert prompted.choices[0].text == model.generate("The", prompt_guidance=0, max_new_tokens=40, seed=5,
                                                      temperature=0.8)
    assert prompted.choices[0].text != model.generate("The", max_new_tokens=40, seed=5, temperature=0.8)  # at 0: no prompt


def test_the_repl_set_author_writes_what_generate_author_writes(authors: tuple[Path, Path, Path],
                                                                isolated_home: Path) -> None:
    from assistant.repl import Repl

    path = authors[2]
    repl = Repl(str(path), min_span=50)
    for line in ("/set author garden", "/set guidance 2", "/seed 5", "/length 60", "The"):
        repl.handle(line)
    cli = run_cli("generate", str(path), "-p", "The", "--author", "garden", "--guidance", "2", "--length", "60",
                  "--seed", "5", "-t", "0.8", "--no-echo", "--no-log")
    assert repl.last is not None and cli.returncode == 0 and cli.stdout == repl.last.text + "\n"
    repl.handle("/set prompt-guidance 1.5")
    assert dict(repl.settings.chain) == {"author": "garden", "guidance": 2.0, "prompt_guidance": 1.5}
    repl.handle("/set author off")
    assert "author" not in dict(repl.settings.chain)
