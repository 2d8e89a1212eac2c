"""One writer per data dir, and a `dossier ingest` SIGKILLed at any store write recovers.

The CLI runs for real, in subprocesses. FakeEmbeddings cannot be handed to another process,
so this module is also the subprocess's entry point (`python -m tests.test_crash_safety
ARGS`, see `_dossier_with_fake_embeddings`): the real `bot.cli.main()`, with the embedder
swapped where the factory builds it and, on request, a SIGKILL of itself (or a pause) right
after its Nth store write. The hooks live here, so no test-only switch ships in the product,
and the kill points are exact where timed kills would land wherever the scheduler pleased.
"""

from __future__ import annotations

import json
import os
import random
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

PROJECT = Path(__file__).resolve().parent.parent
ENTRY = [sys.executable, "-m", "tests.test_crash_safety"]  # this module, in a subprocess

# Read by the subprocess entry point only (not DOSSIER_*: those are settings).
KILL_AFTER = "CRASH_TEST_KILL_AFTER_WRITES"
FLUSH_PASSAGES = 16
PAUSE_AFTER = "CRASH_TEST_PAUSE_AFTER_WRITES"
RESUME_FILE = "CRASH_TEST_RESUME_FILE"
NOTES_FILE = "CRASH_TEST_NOTES_FILE"


# -- the subprocess side ----------------------------------------------------------------------
def _dossier_with_fake_embeddings() -> None:
    """`dossier ARGS` with FakeEmbeddings, counting store writes: every Chroma add, upsert,
    update, delete and modify, and every save of the keyword index.

    KILL_AFTER=N: SIGKILL itself right after write N. PAUSE_AFTER=N: wait after write N
    until RESUME_FILE exists. Each event, and the write count of a run that ends, is one
    JSON line in NOTES_FILE (with the passage and article counts in Chroma then).
    """
    import atexit

    from chromadb.api.models.Collection import Collection

    import bot.cli
    import bot.factory
    import index.ingest
    from index.keyword import KeywordIndex
    from index.store import PassageStore
    from tests.support.fakes import FakeEmbeddings

    kill_after = int(os.environ.get(KILL_AFTER, "0"))
    pause_after = int(os.environ.get(PAUSE_AFTER, "0"))
    stores: list[PassageStore] = []
    writes = 0

    class WatchedStore(PassageStore):
        def __init__(self, *args: Any, **kwargs: Any) -> None:
            super().__init__(*args, **kwargs)
            stores.append(self)

    def note(event: str, **fields: Any) -> None:
        line = {"event": event, "writes": writes, **fields}
        with open(os.environ[NOTES_FILE], "a", encoding="utf-8") as handle:
            handle.write(json.dumps(line) + "\n")

    def counted(owner: type, name: str) -> None:
        original = getattr(owner, name)

        def wrapper(self: Any, *args: Any, **kwargs: Any) -> Any:
            nonlocal writes
            result = original(self, *args, **kwargs)
            writes += 1
            if writes in (kill_after, pause_after):
                op = f"{getattr(self, 'name', 'keyword')}.{name}"
                store = stores[0]
                counts = {"passages": store.count(), "articles": store.articles.count()}
                if writes == kill_after:
                    note("killed", op=op, **counts)
                    os.kill(os.getpid(), signal.SIGKILL)
                note("paused", op=op, **counts)
                deadline = time.monotonic() + 120
                while not Path(os.environ[RESUME_FILE]).exists() and time.monotonic() < deadline:
                    time.sleep(0.02)
            return result

        setattr(owner, name, wrapper)

    for name in ("add", "upsert", "update", "delete", "modify"):
        counted(Collection, name)
    counted(KeywordIndex, "save")
    bot.factory.SentenceEmbeddings = lambda *_args, **_kwargs: FakeEmbeddings()  # type: ignore
    # Small flushes (each: delete, add, texts upsert, registry delete and upsert) so a run
    # has many write points.
    index.ingest._EMBED_BATCH_PASSAGES = FLUSH_PASSAGES
    bot.factory.PassageStore = WatchedStore  # type: ignore[misc]
    atexit.register(lambda: note("ended"))
    bot.cli.main()


# -- running it -------------------------------------------------------------------------------
@dataclass(frozen=True)
class Run:
    returncode: int
    stdout: str
    stderr: str
    notes: list[dict[str, Any]]


def _env(data_dir: Path, **extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("DOSSIER_", "CRASH_TEST_"))}
    return {**env, "PYTHONPATH": str(PROJECT), "HF_HUB_OFFLINE": "1",
            "DOSSIER_DATA_DIR": str(data_dir), **extra}


def _notes_file(data_dir: Path) -> Path:
    return data_dir.parent / f"notes-{uuid.uuid4().hex[:8]}.jsonl"


def _read_notes(path: Path) -> list[dict[str, Any]]:
    return [json.loads(line) for line in path.read_text().splitlines()] if path.exists() else []


def _fake_cli(args: list[str], data_dir: Path, **hooks: str) -> Run:
    """Run `dossier ARGS` (FakeEmbeddings) in data_dir's parent to its end, or its SIGKILL."""
    notes = _notes_file(data_dir)
    done = subprocess.run(
        [*ENTRY, *args], capture_output=True, text=True, timeout=300,
        env=_env(data_dir, **{NOTES_FILE: str(notes)}, **hooks), cwd=data_dir.parent,
    )
    return Run(done.returncode, done.stdout, done.stderr, _read_notes(notes))


def _ingest(data_dir: Path, corpus: Path, *, kill_after: int = 0) -> Run:
    hooks = {KILL_AFTER: str(kill_after)} if kill_after else {}
    return _fake_cli(["ingest", str(corpus), "--prune", "--json"], data_dir, **hooks)


@pytest.fixture
def ram_dir() -> Iterator[Path]:
    """A scratch folder in RAM when the machine has one: these tests kill processes, not the
    machine, and the page cache outlives a process, so tmpfs tests the same thing, faster."""
    shm = Path("/dev/shm")
    parent = shm if shm.is_dir() and os.access(shm, os.W_OK) else None
    folder = Path(tempfile.mkdtemp(prefix="dossier-crash-", dir=parent))
    try:
        yield folder
    finally:
        shutil.rmtree(folder, ignore_errors=True)


# -- a synthetic corpus -----------------------------------------------------------------------
_WORDS = [
    "mineral", "lithium", "copper", "port", "rail", "energy", "workforce", "policy", "investor",
    "tariff", "supply", "refinery", "mine", "export", "quota", "budget", "ministry", "province",
    "council", "harbor", "grid", "battery", "nickel", "cobalt", "drought", "river", "bridge",
    "school", "clinic", "farm", "wheat", "price", "market", "bank", "loan", "bond", "court",
    "judge", "vote", "senate", "mayor", "police", "storm", "flood", "fire", "museum", "festival",
    "orchestra", "satellite", "vaccine",
]


def _story(number: int, revision: int) -> str:
    """A small synthetic article; every sentence is unique, so none reads as page chrome."""
    rng = random.Random(number * 1000 + revision)
    paragraphs = []
    for p in range(rng.randint(1, 3)):
        sentences = []
        for s in range(rng.randint(2, 5)):
            words = " ".join(rng.choice(_WORDS) for _ in range(rng.randint(8, 15)))
            sentences.append(f"Story {number} revision {revision} part {p}.{s} covers {words}.")
        paragraphs.append(" ".join(sentences))
    return f"Story number {number}\n\n" + "\n\n".join(paragraphs) + "\n"


def _write_corpus(folder: Path, stories: dict[int, int]) -> None:
    """Make `folder` hold exactly story-NNN.txt at revision stories[N]."""
    folder.mkdir(parents=True, exist_ok=True)
    wanted = {f"story-{n:03d}.txt": _story(n, r) for n, r in stories.items()}
    for path in folder.iterdir():
        if path.name not in wanted:
            path.unlink()
    for name, text in wanted.items():
        path = folder / name
        if not path.exists() or path.read_text() != text:
            path.write_text(text)


def _question(stories: dict[int, int]) -> tuple[str, str]:
    """A sentence of the last story, as a question, and that story's article id (its path
    in the corpus folder)."""
    number = max(stories)
    return (_story(number, stories[number]).split("\n\n")[1].split(". ")[1],
            f"story-{number:03d}.txt")


# Corpus A: 200 stories. Corpus B: 12 of them revised, 4 removed, 4 new: still 200.
CORPUS_A = {n: 0 for n in range(200)}
CORPUS_B = {
    **{n: 0 for n in range(196)},
    **{n: 1 for n in range(5, 185, 15)},
    **{n: 0 for n in range(200, 204)},
}


# -- what an index holds ----------------------------------------------------------------------
@dataclass(frozen=True)
class IndexState:
    passage_ids: tuple[str, ...]
    articles: dict[str, tuple[str, str, int]]  # id -> content hash, text hash, passages
    keyword_ids: tuple[str, ...]  # the keyword index as saved on disk
    keyword_generation: str | None
    store_generation: str
    article_rows: tuple[str, ...]  # articles with a row of the article vectors

    def content(self) -> tuple[Any, ...]:
        """What must equal a clean build of the same corpus (generations are random)."""
        return self.passage_ids, self.articles, self.article_rows

    def assert_consistent(self) -> None:
        assert self.keyword_ids == self.passage_ids
        assert self.keyword_generation == self.store_generation
        assert sum(p for _, _, p in self.articles.values()) == len(self.passage_ids)
        assert self.article_rows == tuple(sorted(i for i, (_, _, p) in self.articles.items()
                                                 if p))


def _dossier(data_dir: Path) -> Any:
    from bot.factory import Dossier
    from bot.settings import load_settings
    from tests.support.fakes import FakeEmbeddings

    return Dossier(load_settings(data_dir=data_dir), embedder=FakeEmbeddings())


def _open_copy(data_dir: Path) -> Any:
    """A Dossier on a copy of data_dir: this process then caches no Chroma state of a folder
    that later subprocesses change."""
    copy = data_dir.parent / f"copy-{uuid.uuid4().hex[:8]}"
    shutil.copytree(data_dir, copy, ignore=shutil.ignore_patterns("ingest.lock"))
    return _dossier(copy)


def _state(dossier: Any) -> IndexState:
    from index.keyword import KeywordIndex

    store = dossier.store
    saved = KeywordIndex.load(store.keyword_dir)  # read as saved: this check never rebuilds
    return IndexState(
        passage_ids=tuple(sorted(pid for pid, _ in store.iter_passages())),
        articles={r.id: (r.content_hash, r.text_hash, r.passages)
                  for r in store.records().values()},
        keyword_ids=tuple(sorted(saved.ids)) if saved else (),
        keyword_generation=saved.generation if saved else None,
        store_generation=store.generation,
        article_rows=tuple(sorted(store.article_rows.get(include=[])["ids"])),
    )


def _clean_build(data_dir: Path, corpus: Path) -> IndexState:
    """The reference: the same corpus ingested once, undisturbed, in this process."""
    dossier = _dossier(data_dir)
    dossier.ingestor().run([corpus], prune=True, corpus_root=corpus)
    state = _state(dossier)
    state.assert_consistent()
    return state


def _assert_answers(dossier: Any, stories: dict[int, int]) -> None:
    """A sentence of one story, asked as a question, is answered from it verbatim."""
    question, article_id = _question(stories)
    answer = dossier.answerer.ask(question)
    assert answer.answered, question
    assert answer.citations[0].article.id == article_id
    articles = dossier.store.get_articles([c.article.id for c in answer.citations])
    for c in answer.citations:
        assert articles[c.article.id].text[c.start : c.end] == c.quote


# -- one writer -------------------------------------------------------------------------------
LOCKED = re.compile(
    r"dossier: another `dossier ingest` is writing to \S+; try again when it has finished\n"
)


@pytest.mark.slow
def test_ingest_refuses_at_once_while_another_holds_the_lock(ram_dir: Path) -> None:
    corpus, data_dir = ram_dir / "corpus", ram_dir / "data"
    _write_corpus(corpus, {n: 0 for n in range(5)})
    _clean_build(data_dir, corpus)
    before = _state(_open_copy(data_dir))
    _write_corpus(corpus, {n: 1 for n in range(7)})  # work the refused ingest must not do

    with _dossier(data_dir).write_lock():
        # The lock is held throughout: an ingest that waited for it would not return (the
        # run would time out); this one refuses and returns.
        refused = _ingest(data_dir, corpus)
    assert refused.returncode == 1
    assert LOCKED.fullmatch(refused.stderr), refused.stderr  # one line, no traceback
    assert refused.stdout == ""
    assert refused.notes == [{"event": "ended", "writes": 0}]
    assert _state(_open_copy(data_dir)) == before

    done = _ingest(data_dir, corpus)
    assert done.returncode == 0, done.stderr
    report = json.loads(done.stdout)
    assert (report["added"], report["updated"], report["removed"]) == (2, 5, 0)


@pytest.mark.slow
def test_a_second_ingest_while_one_is_writing_is_refused(ram_dir: Path) -> None:
    """Two real `dossier ingest` processes: the first is held after its eighth store write
    (its first registry upsert: mid-write, lock held), the second starts then, and refuses."""
    corpus, data_dir = ram_dir / "corpus", ram_dir / "data"
    _write_corpus(corpus, {n: 0 for n in range(20)})
    notes, resume = _notes_file(data_dir), ram_dir / "resume"
    env = _env(data_dir, **{NOTES_FILE: str(notes), PAUSE_AFTER: "8", RESUME_FILE: str(resume)})
    first = subprocess.Popen(
        [*ENTRY, "ingest", str(corpus), "--json"], env=env, cwd=ram_dir,
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )
    try:
        deadline = time.monotonic() + 120
        while not _read_notes(notes):
            assert first.poll() is None, first.communicate()
            assert time.monotonic() < deadline, "the first ingest never reached its 8th write"
            time.sleep(0.05)
        [paused] = _read_notes(notes)
        assert (paused["event"], paused["op"]) == ("paused", "dossier-articles.upsert")

        second = _ingest(data_dir, corpus)
        assert second.returncode == 1 and LOCKED.fullmatch(second.stderr), second.stderr
        assert second.notes == [{"event": "ended", "writes": 0}]
        assert first.poll() is None  # still there, lock held, when the second was refused
    finally:
        resume.touch()
        out, err = first.communicate(timeout=300)
    assert first.returncode == 0, err
    assert json.loads(out)["added"] == 20
    state = _state(_open_copy(data_dir))
    state.assert_consistent()
    assert len(state.articles) == 20


# -- crash safety -----------------------------------------------------------------------------
@pytest.mark.slow
def test_ingest_killed_at_any_store_write_recovers_to_a_clean_build(ram_dir: Path) -> None:
    """SIGKILL half-way through a build from nothing, then at nine points of moves between
    corpus A and B (updates, additions, prunes): each time, the next `dossier ingest`
    completes and the index equals a clean build of the same corpus, and answers."""
    corpus = ram_dir / "corpus"
    _write_corpus(corpus, CORPUS_B)
    clean = {"B": _clean_build(ram_dir / "clean-b", corpus)}
    _write_corpus(corpus, CORPUS_A)
    clean["A"] = _clean_build(ram_dir / "clean-a", corpus)
    assert len(clean["A"].articles) == len(clean["B"].articles) == 200

    # Where each kill lands, as a share of the writes the same ingest makes uninterrupted
    # (measured on a scratch copy): the first is half-way through a build from nothing,
    # the others spread over moves between A and B (updates, additions, prunes), from the
    # first write (a new generation) to the last (the keyword index saved).
    plan = [("A", 0.5), ("B", 0.0), ("A", 0.1), ("B", 0.25), ("A", 0.4), ("B", 0.55),
            ("A", 0.7), ("B", 0.85), ("A", 0.95), ("B", 1.0)]
    data_dir = ram_dir / "work"
    kills: list[tuple[str, int, str, int, int]] = []
    for target, share in plan:
        stories = CORPUS_A if target == "A" else CORPUS_B
        _write_corpus(corpus, stories)
        scratch = ram_dir / "scratch"
        shutil.rmtree(scratch, ignore_errors=True)
        if data_dir.exists():
            shutil.copytree(data_dir, scratch)
        dry = _ingest(scratch, corpus)
        assert dry.returncode == 0, dry.stderr
        total = dry.notes[-1]["writes"]
        kill_after = min(total, max(1, round(total * share)))
        crashed = _ingest(data_dir, corpus, kill_after=kill_after)
        assert crashed.returncode == -signal.SIGKILL, (crashed.returncode, crashed.stderr)
        [kill] = crashed.notes
        assert kill["event"] == "killed" and kill["writes"] == kill_after, kill
        kills.append((target, kill["writes"], kill["op"], kill["passages"], kill["articles"]))

        recovered = _ingest(data_dir, corpus)
        assert recovered.returncode == 0, recovered.stderr
        dossier = _open_copy(data_dir)
        state = _state(dossier)
        state.assert_consistent()
        assert state.content() == clean[target].content(), kill
        _assert_answers(dossier, stories)

    print("\nkilled (corpus, after write, operation, passages, articles):", *kills, sep="\n  ")
    assert len({counts[3:] for counts in kills}) >= 6  # the kills met many index states

    question, article_id = _question(CORPUS_B)
    asked = _fake_cli(["ask", question, "--json"], data_dir)
    assert asked.returncode == 0, asked.stderr
    answer = json.loads(asked.stdout)
    assert answer["answered"] and answer["citations"][0]["article"]["id"] == article_id


if __name__ == "__main__":
    _dossier_with_fake_embeddings()
