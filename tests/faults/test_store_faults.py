"""The sample store under concurrency and damage.

Eight processes write at once through `store_sample`, the path the CLI, the
REPL and the editor server all take (each sample opens the store, as each
front end does): every row arrives and no "database is locked" reaches anyone.
A damaged database is a one-line error, never written to, and
`assistant samples fresh` keeps it aside and starts a new store.
"""

import subprocess
import sys
import time
from pathlib import Path

from assistant.samples.store import Store

from ..conftest import ROOT, run_cli
from .conftest import figure, size

WRITERS = 8
SOURCES = ["cli", "repl", "editor"]
ROW = {"created": "2026-01-01T00:00:00.000+00:00", "model": "m", "model_path": "/m", "model_kind": "char", "corpus": None,
       "mode": "prompted", "source": "cli", "prompt": "p", "text": "", "params": {}, "chars": 1, "duration_s": 0.0,
       "cancelled": False}

WRITER = """
import sys, time
from assistant.samples.recording import store_sample
from contract.modeldir import Card

writer, count, start = int(sys.argv[1]), int(sys.argv[2]), float(sys.argv[3])
card = Card(kind="char", name="m")
source = ["cli", "repl", "editor"][writer % 3]
while time.time() < start:  # every writer starts at the same moment, imports done
    time.sleep(0.005)
for i in range(count):
    row = {"created": "2026-01-01T00:00:00.000+00:00", "model": "m", "model_path": "/m", "model_kind": "char",
           "corpus": None, "mode": "prompted", "source": source, "prompt": "p", "text": f"writer {writer} sample {i}",
           "params": {}, "chars": 1, "duration_s": 0.0, "cancelled": False}
    try:
        store_sample(row, card)
    except Exception as e:
        print(f"sample {i}: {type(e).__name__}: {e}", file=sys.stderr)
"""


def test_eight_writers_at_once_lose_no_row_and_see_no_lock(isolated_home: Path):
    count = size(ci=40, long=500)
    start = time.time() + 4
    procs = [subprocess.Popen([sys.executable, "-c", WRITER, str(w), str(count), str(start)], cwd=ROOT,
                              stderr=subprocess.PIPE, text=True) for w in range(WRITERS)]
    errors = [p.communicate(timeout=600)[1] for p in procs]
    with Store() as store:
        texts = [s.text for s in store.find()]
        sources = {s.source for s in store.find()}
    locked = sum(e.count("locked") for e in errors)
    figure(f"sample store: {len(texts)}/{WRITERS * count} rows written by {WRITERS} processes at once, "
           f"{locked} 'locked' errors")
    assert not any(errors), errors
    assert all(p.returncode == 0 for p in procs)
    assert sorted(texts) == sorted(f"writer {w} sample {i}" for w in range(WRITERS) for i in range(count))
    assert sources == set(SOURCES)


def _damaged_store(home: Path) -> bytes:
    """A store with samples in it whose header has been overwritten: SQLite no longer knows it for a database."""
    with Store() as store:
        for i in range(3):
            store.add({**ROW, "text": f"sample {i}"})
        store.db.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    path = home / "samples.db"
    data = bytearray(path.read_bytes())
    data[:100] = b"\xff" * 100
    path.write_bytes(bytes(data))
    for suffix in ("-wal", "-shm"):
        Path(f"{path}{suffix}").unlink(missing_ok=True)
    return bytes(data)


def test_a_damaged_store_is_refused_untouched_and_kept_aside_for_a_fresh_one(isolated_home: Path, trained_model: Path):
    damaged = _damaged_store(isolated_home)
    path = isolated_home / "samples.db"
    listed = run_cli("samples", "list")
    assert listed.returncode == 2 and listed.stderr.count("\n") == 1 and "Traceback" not in listed.stderr, listed.stderr
    assert listed.stderr.startswith("error: the sample store") and "assistant samples fresh" in listed.stderr
    written = run_cli("generate", str(trained_model), "-p", "The", "-l", "20", "--seed", "1")
    assert written.returncode == 0 and len(written.stdout) > 20  # the writer still gets the text, and a warning
    assert "warning: the sample was not stored" in written.stderr and "Traceback" not in written.stderr
    assert path.read_bytes() == damaged, "a damaged store must never be written to"

    fresh = run_cli("samples", "fresh")
    assert fresh.returncode == 0, fresh.stderr
    [aside] = isolated_home.glob("samples.db.damaged-*")
    assert str(aside) in fresh.stdout.replace("\n", "") and aside.read_bytes() == damaged
    with Store() as store:  # the new store takes samples
        assert store.find() == [] and store.add({**ROW, "text": "after"}) == 1
    again = run_cli("samples", "fresh")  # a sound store is never set aside
    assert again.returncode == 2 and "not damaged" in again.stderr
