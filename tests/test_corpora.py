"""Corpus catalogue, cleaning and loading on the real shared files."""

from pathlib import Path

import pytest

from corpora import CATALOGUE, UserError, load_corpus
from corpora.clean import clean, decode

from .conftest import CORPORA, run_cli
from .documents import FORMATS, document


def test_catalogue_has_the_three_named_corpora():
    assert {"pkd", "austen", "shakespeare"} <= set(CATALOGUE)
    assert len(CATALOGUE["austen"].documents) == 7
    assert all(d.ebook for d in CATALOGUE["pkd"].documents)


def test_pkd_loads_from_assistant_corpora_and_is_clean():
    corpus = load_corpus("pkd")
    assert corpus.source.endswith("pkd")
    assert len(corpus.documents) == 13
    for doc in corpus.documents:
        assert "Project Gutenberg" not in doc.text
        assert "\r" not in doc.text and "\ufeff" not in doc.text
        # producer credits and transcriber's notes are about the e-text, not of it
        assert "etext" not in doc.text.lower() and "transcriber" not in doc.text.lower()
        assert "Produced by" not in doc.text
    wub = corpus.documents[0].text
    assert "BEYOND LIES THE WUB" in wub[:300]
    assert wub.rstrip().endswith('Odysseus, as I understand him--"')


def test_austen_and_shakespeare_keep_their_own_text():
    austen = load_corpus("austen")
    assert austen.documents[0].text.startswith("PRIDE AND PREJUDICE")
    assert austen.documents[1].text.startswith("SENSE AND SENSIBILITY")  # "Special thanks ..." is gone
    shakespeare = load_corpus("shakespeare")
    raw = (CORPORA / "tinyshakespeare" / "input.txt").read_text()
    assert shakespeare.documents[0].text == raw  # no Gutenberg markers: kept as is
    assert shakespeare.stats()["vocabulary"] == 65


def test_older_gutenberg_marker_variants():
    old = (
        "The Project Gutenberg Etext of X\n*END*THE SMALL PRINT! FOR PUBLIC DOMAIN ETEXTS*Ver.04.29.93*END*\n\n"
        "Body text.\n\nEnd of the Project Gutenberg Etext of X\nlicence"
    )
    assert clean(old) == "Body text.\n"
    newer = (
        "\ufeffHeader\r\n***START OF THE PROJECT GUTENBERG EBOOK X***\r\nBody.\r\n"
        "***END OF THE PROJECT GUTENBERG EBOOK X***\r\nLicence"
    )
    assert clean(newer) == "Body.\n"


def test_an_authors_paragraph_that_reads_like_a_credit_is_kept():
    body = (
        "*** START OF THE PROJECT GUTENBERG EBOOK X ***\n\nProduced by Someone\n\nTITLE\n\n"
        "[Transcriber's Note: from a 1953 magazine.]\n\nProduced by hand, the robots marched.\n\nThe end.\n"
        "*** END OF THE PROJECT GUTENBERG EBOOK X ***"
    )
    text = clean(body)
    assert text.startswith("TITLE\n") and text.endswith("\n\nProduced by hand, the robots marched.\n\nThe end.\n")
    assert "Someone" not in text and "Transcriber" not in text


def test_local_file_and_directory(tmp_path: Path):
    (tmp_path / "a.txt").write_text("First story.\n")
    sub = tmp_path / "more"
    sub.mkdir()
    (sub / "b.txt").write_text("Second story.\n")
    (tmp_path / "notes.md").write_text("# Notes\n")
    corpus = load_corpus(str(tmp_path))
    assert [d.text for d in corpus.documents] == ["First story.\n", "Second story.\n", "# Notes\n"]
    assert [d.name for d in corpus.documents] == ["a.txt", "more/b.txt", "notes.md"] and corpus.skipped == ()
    single = load_corpus(str(tmp_path / "a.txt"))
    assert single.name == "a" and single.stats() == {"documents": 1, "characters": 13, "vocabulary": 10, "words": 2}


def test_checksum_does_not_depend_on_how_the_path_is_typed(tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    (tmp_path / "novel.txt").write_text("Chapter one.\n")
    absolute = load_corpus(str(tmp_path / "novel.txt")).checksum
    monkeypatch.chdir(tmp_path)
    assert load_corpus("novel.txt").checksum == absolute
    assert load_corpus(f"../{tmp_path.name}/novel.txt").checksum == absolute


def test_unknown_name_suggests_the_nearest():
    with pytest.raises(UserError, match="did you mean 'austen'"):
        load_corpus("austin")


def test_missing_path():
    with pytest.raises(UserError, match=r"no such file or directory: nowhere/novel\.txt"):
        load_corpus("nowhere/novel.txt")


def test_empty_corpus(tmp_path: Path):
    (tmp_path / "empty.txt").write_text("\n\n  \n")
    with pytest.raises(UserError, match="is empty"):
        load_corpus(str(tmp_path / "empty.txt"))
    with pytest.raises(UserError, match=r"no \.txt or \.md files"):
        load_corpus(str(_empty_dir(tmp_path)))


def _empty_dir(tmp_path: Path) -> Path:
    d = tmp_path / "nothing"
    d.mkdir()
    return d


def test_binary_file_names_file_and_offset(tmp_path: Path):
    path = tmp_path / "image.txt"
    path.write_bytes(b"GIF89a" + b"\x00" * 10)
    with pytest.raises(UserError, match=r"image\.txt: looks like a binary file \(NUL byte at offset 6\)"):
        load_corpus(str(path))


def test_non_utf8_names_offset_and_encoding_reads_it(tmp_path: Path):
    path = tmp_path / "latin.txt"
    path.write_bytes("Caf\u00e9 au lait.\n".encode("latin-1"))
    with pytest.raises(UserError, match=r"latin\.txt: not valid utf-8 \(byte 0xe9 at offset 3\).*--encoding"):
        load_corpus(str(path))
    assert load_corpus(str(path), encoding="latin-1").documents[0].text == "Caf\u00e9 au lait.\n"
    with pytest.raises(UserError, match="unknown encoding"):
        decode(b"x", "x", "no-such-codec")


@pytest.mark.parametrize("suffix", FORMATS)
@pytest.mark.parametrize("encoding", [None, "latin-1", "utf-16"])
def test_a_word_processors_file_is_refused_whatever_the_encoding(tmp_path: Path, suffix: str, encoding: str | None):
    """--encoding is for another character set: it must not make a .docx or a PDF readable as text."""
    path = tmp_path / f"novel{suffix}"
    path.write_bytes(document(suffix))
    with pytest.raises(UserError, match=rf"novel\{suffix} is .*\({suffix}\), not plain text: save it as plain text \(\.txt\)"):
        load_corpus(str(path), encoding=encoding)
    renamed = tmp_path / "novel.txt"  # told by its bytes, not its name
    renamed.write_bytes(document(suffix))
    with pytest.raises(UserError, match=rf"\({suffix}\), not plain text"):
        load_corpus(str(renamed), encoding=encoding)


def test_a_folder_reads_text_and_markdown_and_says_what_it_left_out(tmp_path: Path):
    (tmp_path / "a.txt").write_text("Chapter one.\n")
    (tmp_path / "b.md").write_text("Chapter *two*.\n")
    (tmp_path / "novel.docx").write_bytes(document(".docx"))
    (tmp_path / "cover.jpg").write_bytes(b"\xff\xd8\xff\xe0")
    (tmp_path / "blank.txt").write_text("\n\n")
    (tmp_path / ".DS_Store").write_bytes(b"\x00\x01")  # the system's, not the writer's: neither read nor listed
    corpus = load_corpus(str(tmp_path))
    assert [d.name for d in corpus.documents] == ["a.txt", "b.md"]
    assert [str(s) for s in corpus.skipped] == [
        "blank.txt (no text in it)",
        "cover.jpg (not a .txt or .md file)",
        "novel.docx (a Word document: save it as plain text (.txt) to include it)",
    ]
    for name in ("a.txt", "b.md"):
        (tmp_path / name).unlink()
    (tmp_path / "blank.txt").unlink()
    with pytest.raises(UserError, match=r"no \.txt or \.md files in this folder; left out cover\.jpg .*novel\.docx \(a Word"):
        load_corpus(str(tmp_path))


def test_catalogue_documents_have_their_titles():
    corpus = load_corpus("pkd")
    assert corpus.documents[0].title == "Beyond Lies the Wub" and corpus.documents[0].name == "beyond-lies-the-wub.txt"


def test_encoding_applies_only_to_the_files_that_are_not_utf8(tmp_path: Path):
    """Following the error's advice on a folder of UTF-8 chapters with one latin-1 file must not garble the others:
    a UTF-8 file stays UTF-8 (its curly quotes one character each), and `corpus show` says which file was read how."""
    chapter = "\u201cWell,\u201d she said, \u201cit\u2019s late.\u201d\n" * 50
    (tmp_path / "chapter1.txt").write_text(chapter, encoding="utf-8")
    (tmp_path / "chapter2.txt").write_bytes("Caf\u00e9 au lait, na\u00efve.\n".encode("latin-1"))
    with pytest.raises(UserError, match=r"chapter2\.txt: not valid utf-8.*--encoding"):
        load_corpus(str(tmp_path))
    corpus = load_corpus(str(tmp_path), encoding="latin-1")
    texts = {d.name: d.text for d in corpus.documents}
    assert texts == {"chapter1.txt": chapter, "chapter2.txt": "Caf\u00e9 au lait, na\u00efve.\n"}
    assert corpus.encoded == {"latin-1": ["chapter2.txt"]}
    shown = run_cli("corpus", "show", str(tmp_path), "--encoding", "latin-1", env={"COLUMNS": "200"})
    assert shown.returncode == 0, shown.stderr
    assert "Read chapter2.txt as latin-1 (--encoding); the other files are UTF-8, and read as UTF-8." in shown.stdout
    assert f"{len(chapter):,}" in shown.stdout
    utf16 = tmp_path / "notes.txt"  # UTF-16's ASCII is valid UTF-8, NUL bytes and all: it is read as asked
    utf16.write_bytes("Notes.\n".encode("utf-16-le"))
    assert load_corpus(str(utf16), encoding="utf-16-le").documents[0].text == "Notes.\n"
