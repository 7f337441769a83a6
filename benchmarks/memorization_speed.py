"""Memorization check speed on Austen (4.4 MB): index build, cache load, and a 1,000-character query.

Ours: the suffix array (corpora.suffixarray) with binary searches. The naive
baseline runs the same search (a span one longer than the best so far, at each
sample position) with Python's `str.__contains__` over the whole text instead,
in the same run, on the same samples. Goal: a query in well under 100 ms.

    .venv/bin/python benchmarks/memorization_speed.py
"""

import os
import random
import tempfile
import time
from pathlib import Path

from _common import SHARED_CORPORA


def naive_longest(text: str, sample: str) -> int:
    best = 0
    for i in range(len(sample)):
        while i + best < len(sample) and sample[i : i + best + 1] in text:
            best += 1
    return best


def main() -> None:
    if "ASSISTANT_CORPORA" not in os.environ and SHARED_CORPORA.is_dir():
        os.environ["ASSISTANT_CORPORA"] = str(SHARED_CORPORA)
    os.environ["ASSISTANT_HOME"] = tempfile.mkdtemp(prefix="ghostwriter-bench-")

    from corpora import load_corpus
    from corpora.index import CorpusIndex, index_folder

    corpus = load_corpus("austen")
    start = time.perf_counter()
    index = CorpusIndex.build(corpus)
    build_s = time.perf_counter() - start
    folder: Path = index_folder(corpus.checksum)
    index.save(folder)
    start = time.perf_counter()
    index = CorpusIndex.load(folder)
    load_s = time.perf_counter() - start
    print(f"austen: {len(index.text):,} characters, {len(corpus.documents)} documents")
    print(f"build {build_s:.2f} s (once per corpus); load from the cache {load_s * 1000:.0f} ms")

    rng = random.Random(0)
    doc = corpus.documents[2].text
    at = rng.randrange(len(doc) - 1000)
    copied = doc[at : at + 1000]
    # a sample in the author's words but not copied: every 40th character changed
    edited = "".join("§" if k % 40 == 39 else c for k, c in enumerate(copied))
    scrambled = " ".join(rng.sample(copied.split(), len(copied.split())))[:1000]
    for label, sample in (("verbatim passage", copied), ("edited every 40 chars", edited), ("scrambled words", scrambled)):
        runs = []
        for _ in range(5):
            start = time.perf_counter()
            span = index.longest_span(sample)
            runs.append(time.perf_counter() - start)
        ours_ms = sorted(runs)[len(runs) // 2] * 1000
        start = time.perf_counter()
        naive = naive_longest(index.text, sample)
        naive_ms = (time.perf_counter() - start) * 1000
        assert span is not None and span.length == naive, (span, naive)
        print(f"{label:>22}: longest span {span.length:4d} | ours {ours_ms:6.1f} ms | naive str search {naive_ms:8.0f} ms"
              f" | x{naive_ms / ours_ms:,.0f}")


if __name__ == "__main__":
    main()
