"""Memorization check speed on Austen (4.4 MB): index build, cache load, and a 1,000-character query.

Ours: the suffix array (corpora.suffixarray) with binary searches. The naive
baseline runs the same search (a span one longer than the best so far, at each
sample position) with Python's `str.__contains__` over the whole text instead,
in the same run, on the same samples. Goal: a query in well under 100 ms.

    .venv/bin/python benchmarks/memorization_speed.py
"""

import argparse
import os
import random
import tempfile
import time
from pathlib import Path

from _common import SHARED_CORPORA, add_json_option, emit

SAMPLES = {"verbatim": "verbatim passage", "edited": "edited every 40 chars", "scrambled": "scrambled words"}
FIGURES = {
    "characters": "Austen's characters", "documents": "documents", "build_s": "index build (once per corpus), s",
    "load_ms": "index load from the cache, ms",
    **{f"{key}.{figure}": f"{what} ({label})" for key, label in SAMPLES.items() for figure, what in (
        ("span", "longest copied span"), ("ours_ms", "ours, ms"), ("naive_ms", "naive `in` search, ms"))},
}


def naive_longest(text: str, sample: str) -> int:
    best = 0
    for i in range(len(sample)):
        while i + best < len(sample) and sample[i : i + best + 1] in text:
            best += 1
    return best


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    add_json_option(parser)
    args = parser.parse_args()
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
    result: dict = {"characters": len(index.text), "documents": len(corpus.documents), "build_s": round(build_s, 2),
                    "load_ms": round(load_s * 1000, 1)}
    for key, sample in (("verbatim", copied), ("edited", edited), ("scrambled", scrambled)):
        label = SAMPLES[key]
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
        result[key] = {"span": span.length, "ours_ms": round(ours_ms, 1), "naive_ms": round(naive_ms)}
    emit(result, FIGURES, args)


if __name__ == "__main__":
    main()
