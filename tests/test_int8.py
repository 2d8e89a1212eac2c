"""`index.precision = "int8"`: a real OpenVINO int8 model, calibrated on ingested passages,
saved in the data dir, reused by later processes, and answering like the torch model."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from collections.abc import Sequence
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import numpy as np
import pytest

from bot.factory import Dossier
from bot.settings import load_settings
from index.chunking import chunk_article
from index.embeddings import SentenceEmbeddings, bundled_model_path
from index.int8 import (
    INFO_FILE,
    MODEL_FILE,
    PLAIN_FOLDER,
    Int8Encoder,
    Int8Unavailable,
    Tokenize,
)
from index.loaders import load_file
from index.model_build import ModelBuildFailed, copy_model
from tests.support import PROJECT, SEED

pytestmark = pytest.mark.slow

# Sentences the model was not calibrated on, about other things than the seed article.
HELD_OUT = [
    "The central bank raised interest rates by half a percentage point on Wednesday.",
    "Heavy rain flooded several neighbourhoods and closed the main highway overnight.",
    "The team won the championship after a penalty shoot-out in the final minutes.",
    "Researchers reported that the new vaccine cut hospital admissions by a third.",
    "Lithium and cobalt prices fell as new mines in Australia came into production.",
    "Parliament passed the budget after a long debate over defence spending.",
]


def _seed_passages(embedder: SentenceEmbeddings) -> list[str]:
    [article] = load_file(SEED, corpus_root=SEED.parent)
    return [chunk.text for chunk in chunk_article(article, embedder.count_tokens)]


# An ingest in a fresh process whose first pool calibrates int8 on the seed's passages:
# it reports which heavy packages entered its process and what each build step loaded.
_INT8_INGEST_IN_A_NEW_PROCESS = """
import json, sys
from pathlib import Path
import index.embeddings
from index.embeddings import SentenceEmbeddings
steps = []
real_build = index.embeddings.build_in_child
index.embeddings.build_in_child = lambda *args: steps.extend(real_build(*args)) or steps
passages = json.loads(sys.stdin.read())
index.embeddings.MIN_CALIBRATION_PASSAGES = len(passages)  # few: quick to build
model = SentenceEmbeddings(precision="int8", int8_dir=Path(sys.argv[1]))
model.prepare(passages)
vectors = model.encode(passages[:6])
heavy = sorted(m for m in ("torch", "sentence_transformers", "transformers", "nncf")
               if m in sys.modules)
print(json.dumps({"backend": model.backend, "heavy": heavy, "shape": list(vectors.shape),
                  "steps": steps}))
"""


@pytest.fixture(scope="session")
def int8_build(
    tmp_path_factory: pytest.TempPathFactory, embedder: SentenceEmbeddings
) -> tuple[Path, dict[str, Any]]:
    """The one int8 model of the test run, built as an ingest builds it (in child
    processes, from a fresh process), calibrated on the seed's passages (16: four
    calibration batches); with what that process reported. Tests that do not test the
    build share it."""
    folder = tmp_path_factory.mktemp("int8") / "int8"
    seed = _seed_passages(embedder)
    passages = (seed * 16)[:16]
    done = subprocess.run([sys.executable, "-c", _INT8_INGEST_IN_A_NEW_PROCESS, str(folder)],
                          input=json.dumps(passages), cwd=PROJECT, capture_output=True,
                          text=True, timeout=600)
    assert done.returncode == 0, done.stderr[-2000:]
    result: dict[str, Any] = json.loads(done.stdout.strip().splitlines()[-1])
    return folder, result


@pytest.fixture
def built(int8_build: tuple[Path, dict[str, Any]]) -> Path:
    """The shared int8 model (tests only read it)."""
    return int8_build[0]


def test_int8_vectors_agree_with_the_torch_model(
    built: Path, embedder: SentenceEmbeddings
) -> None:
    int8_vectors = SentenceEmbeddings(precision="int8", int8_dir=built).encode(HELD_OUT)
    torch_vectors = embedder.encode(HELD_OUT)
    assert int8_vectors.shape == torch_vectors.shape == (len(HELD_OUT), embedder.dimension)
    assert np.allclose(np.linalg.norm(int8_vectors, axis=1), 1.0, atol=1e-4)
    cosines = np.sum(int8_vectors * torch_vectors, axis=1)
    assert cosines.min() > 0.95, cosines
    # Each sentence is still nearest to itself among the others: meaning survives.
    nearest = np.argmax(int8_vectors @ torch_vectors.T, axis=1)
    assert list(nearest) == list(range(len(HELD_OUT)))


def test_a_saved_model_is_loaded_not_rebuilt(
    built: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    def no_rebuild(*_args: object) -> None:
        raise AssertionError("the saved int8 model should have been loaded")

    monkeypatch.setattr(Int8Encoder, "build", no_rebuild)
    first = SentenceEmbeddings(precision="int8", int8_dir=built)
    second = SentenceEmbeddings(precision="int8", int8_dir=built)
    assert not first.calibrates_int8 and first.backend == "openvino-int8"
    first.prepare(HELD_OUT * 100)  # enough passages to calibrate, were there no model
    assert np.array_equal(first.encode(HELD_OUT), second.encode(HELD_OUT))


def test_a_sigterm_after_int8_models_were_freed_is_handled_not_a_crash(built: Path) -> None:
    # The bot stops on SIGTERM; OpenVINO once crashed the process there after two models
    # had been loaded and freed. A child process, so that a crash cannot take pytest down.
    script = f"""
import asyncio, os, signal, threading
from pathlib import Path
from index.embeddings import SentenceEmbeddings, bundled_model_path
models = [SentenceEmbeddings(precision="int8", int8_dir=Path({str(built)!r})) for _ in "ab"]
for model in models:
    model.encode(["a sentence"])
del models, model

async def stopped_by_sigterm() -> None:  # as python-telegram-bot's run_polling waits
    stop = asyncio.Event()
    asyncio.get_running_loop().add_signal_handler(signal.SIGTERM, stop.set)
    threading.Thread(target=os.kill, args=(os.getpid(), signal.SIGTERM)).start()
    await asyncio.wait_for(stop.wait(), 30)
    print("stopped cleanly")

asyncio.run(stopped_by_sigterm())
"""
    done = subprocess.run([sys.executable, "-c", script], cwd=PROJECT, capture_output=True,
                          text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-2000:]
    assert done.stdout.strip() == "stopped cleanly"


def test_tuning_sends_no_usage_reports(tmp_path: Path) -> None:
    # OpenVINO's converter and NNCF report usage to Google Analytics by default, from a
    # forked process each time. A child process without pytest, where NNCF would report.
    script = f"""
import multiprocessing, socket
from pathlib import Path
from index.embeddings import SentenceEmbeddings, bundled_model_path
from index.int8 import Int8Encoder
attempts = []
real_start = multiprocessing.Process.start
multiprocessing.Process.start = lambda self: attempts.append("process") or real_start(self)
real_connect = socket.socket.connect
socket.socket.connect = lambda self, address: attempts.append(address) or real_connect(
    self, address)
embedder = SentenceEmbeddings(precision="fp32")
Int8Encoder.build(embedder.model, embedder.files, ["A passage about minerals."] * 16,
                  Path({str(tmp_path / "int8")!r}))
Int8Encoder.convert(embedder.model, embedder.files, Path({str(tmp_path / "plain")!r}))
print(attempts)
"""
    done = subprocess.run([sys.executable, "-c", script], cwd=PROJECT, capture_output=True,
                          text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-2000:]
    assert done.stdout.strip().splitlines()[-1] == "[]"
    assert (tmp_path / "int8" / MODEL_FILE).is_file()
    assert (tmp_path / "plain" / MODEL_FILE).is_file()


def test_batches_give_the_same_vectors_as_single_texts(built: Path) -> None:
    model = SentenceEmbeddings(precision="int8", int8_dir=built, batch_size=4)
    together = model.encode(HELD_OUT)
    alone = np.stack([model.encode([text])[0] for text in HELD_OUT])
    # Padding a sentence to its batch's longest must not change its vector.
    assert np.allclose(together, alone, atol=2e-2)
    assert np.min(np.sum(together * alone, axis=1)) > 0.999


@pytest.mark.parametrize("precision", ["auto", "int8"])
def test_too_few_passages_to_calibrate_get_a_plain_openvino_copy_agreeing_with_torch(
    tmp_path: Path, embedder: SentenceEmbeddings, precision: str, compiled_models: Path
) -> None:
    # The run's shared folder: the first of these converts the copy, later ones copy it.
    model = SentenceEmbeddings(precision=precision, int8_dir=tmp_path / "int8",
                               compiled_cache=compiled_models)
    model.prepare(HELD_OUT)
    assert model.backend == "openvino" and model.calibrates_int8
    assert not (tmp_path / "int8" / MODEL_FILE).exists()
    assert (tmp_path / "int8" / PLAIN_FOLDER / MODEL_FILE).is_file()
    # Passages embedded by torch before the copy existed and questions embedded by the
    # copy must stay comparable: one model, one vector space.
    plain_vectors = model.encode(HELD_OUT)
    torch_vectors = embedder.encode(HELD_OUT)
    cosines = np.sum(plain_vectors * torch_vectors, axis=1)
    assert cosines.min() > 0.99, cosines
    # A later process loads the copy instead of converting again.
    later = SentenceEmbeddings(precision=precision, int8_dir=tmp_path / "int8")
    assert later.backend == "openvino"
    assert np.array_equal(later.encode(HELD_OUT), plain_vectors)


@pytest.mark.parametrize(
    "damage", ["other model", "no weights", "no info", "bad info", "garbled weights"]
)
def test_a_foreign_or_half_written_model_is_not_used(
    built: Path, tmp_path: Path, damage: str
) -> None:
    folder = tmp_path / "int8"
    folder.mkdir()
    for name in (MODEL_FILE, INFO_FILE, Path(MODEL_FILE).with_suffix(".bin").name):
        (folder / name).write_bytes((built / name).read_bytes())
    info = json.loads((folder / INFO_FILE).read_text())
    if damage == "other model":
        (folder / INFO_FILE).write_text(json.dumps({**info, "source": "another-model|384"}))
    elif damage == "no weights":
        (folder / MODEL_FILE).unlink()
    elif damage == "no info":
        (folder / INFO_FILE).unlink()
    elif damage == "garbled weights":
        (folder / MODEL_FILE).with_suffix(".bin").write_bytes(b"not the weights")
    else:
        (folder / INFO_FILE).write_text("{not json")
    model = SentenceEmbeddings(precision="int8", int8_dir=folder)
    assert model.calibrates_int8 and model.backend.startswith("torch-")


def test_a_damaged_model_is_looked_at_once_not_at_every_call(
    built: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    folder = tmp_path / "int8"
    folder.mkdir()
    for name in (MODEL_FILE, INFO_FILE):
        (folder / name).write_bytes((built / name).read_bytes())
    (folder / MODEL_FILE).with_suffix(".bin").write_bytes(b"not the weights")
    looks: list[Path] = []
    real_load = Int8Encoder.load.__func__  # type: ignore[attr-defined]

    def counted_load(cls: type[Int8Encoder], *args: Any) -> Int8Encoder | None:
        looks.append(args[0])
        return real_load(cls, *args)

    monkeypatch.setattr(Int8Encoder, "load", classmethod(counted_load))
    model = SentenceEmbeddings(precision="int8", int8_dir=folder)
    for _ in range(3):
        assert model.encode(HELD_OUT).shape == (len(HELD_OUT), 384)
    assert looks == [folder, folder / PLAIN_FOLDER] and model.backend.startswith("torch-")


def test_auto_uses_a_saved_int8_model_and_fp32_or_bf16_never_do(built: Path) -> None:
    assert SentenceEmbeddings(precision="auto", int8_dir=built).backend == "openvino-int8"
    for precision in ("fp32", "bf16"):
        model = SentenceEmbeddings(precision=precision, int8_dir=built)
        assert model.int8 is None and not model.calibrates_int8
        assert model.backend.startswith("torch-")
    # A GPU runs torch: int8 is a CPU path.
    assert not SentenceEmbeddings(device="cuda", int8_dir=built).calibrates_int8


@pytest.mark.parametrize(
    ("precision", "passages", "calibrates"),
    [("int8", 127, False), ("int8", 128, True), ("auto", 1999, False), ("auto", 2000, True)],
)
def test_when_an_ingest_pool_is_large_enough_to_calibrate_on(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, precision: str, passages: int,
    calibrates: bool,
) -> None:
    built: dict[Path, str] = {}
    calibrated_on: list[int] = []
    model = SentenceEmbeddings(precision=precision, int8_dir=tmp_path / "int8")
    monkeypatch.setattr(model, "_load", lambda: object())  # no weights needed for the rule

    def recorded_build(kind: str, _model: str, folder: Path,
                       calibration: Sequence[str] = ()) -> None:
        built[folder] = kind
        if kind == "int8":
            calibrated_on.append(len(calibration))

    def recorded_load(folder: Path, _files: object) -> object:
        return None if folder not in built else SimpleNamespace(quantized=built[folder] == "int8")

    monkeypatch.setattr("index.embeddings.build_in_child", recorded_build)
    monkeypatch.setattr(Int8Encoder, "load", recorded_load)
    told: list[int] = []
    model.on_calibrate = told.append
    model.prepare(["a passage"] * passages)
    assert calibrated_on == ([min(passages, 128)] if calibrates else [])
    assert told == ([min(passages, 128)] if calibrates else [])
    # The plain copy, when not int8.
    assert sorted(built.values()) == (["int8"] if calibrates else ["plain"])
    assert model.calibrates_int8 is not calibrates


def test_the_fast_tokenizer_path_matches_the_transformers_one(
    embedder: SentenceEmbeddings,
) -> None:
    tokenizer = embedder.model.tokenizer
    texts = [*HELD_OUT, "short", "word " * 400]  # the last one is truncated to the window
    assert embedder.files is not None and embedder.files.max_tokens == 256
    ours = Tokenize(embedder.files)(texts)
    theirs = tokenizer(texts, padding=True, truncation=True, max_length=256, return_tensors="np")
    for name in ("input_ids", "attention_mask", "token_type_ids"):
        assert ours[name].dtype == np.int64
        assert np.array_equal(ours[name], theirs[name]), name


@pytest.fixture(scope="module")
def broken_model(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A copy of the model folder whose weights are garbled: what the build child loads
    fails, while the tokenizer and sizes the ingest reads stay good."""
    folder = tmp_path_factory.mktemp("model") / "broken-minilm"
    shutil.copytree(bundled_model_path(), folder)
    (folder / "model.safetensors").write_bytes(b"not the weights")
    return folder


@pytest.mark.parametrize("precision", ["auto", "int8"])
def test_a_failed_build_in_the_child_is_one_line_and_leaves_nothing(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture,
    broken_model: Path, precision: str,
) -> None:
    monkeypatch.setattr("index.embeddings.AUTO_INT8_PASSAGES", 2)
    monkeypatch.setattr("index.embeddings.MIN_CALIBRATION_PASSAGES", 2)
    folder = tmp_path / "int8"
    model = SentenceEmbeddings(str(broken_model), precision=precision, int8_dir=folder)
    assert model.files is not None
    if precision == "int8":
        with pytest.raises(ModelBuildFailed) as raised:
            model.prepare(HELD_OUT)
        message = str(raised.value)
        assert message.startswith("building the int8 embedding model failed: ")
        assert "\n" not in message and "safetensor" in message.lower()
    else:
        model.prepare(HELD_OUT)  # "auto": the ingest goes on, and says why
        assert "int8 calibration failed" in caplog.text
        assert "converting the model to OpenVINO failed" in caplog.text
        assert not model.calibrates_int8
    # Nothing half-written for a later process to find.
    assert not folder.exists() or not any(folder.rglob("*"))
    assert SentenceEmbeddings(precision=precision, int8_dir=folder).openvino is None


def test_the_model_is_built_in_a_child_and_torch_never_enters_the_ingest(
    int8_build: tuple[Path, dict[str, Any]],
) -> None:
    folder, result = int8_build
    steps = result.pop("steps")
    assert result == {"backend": "openvino-int8", "heavy": [], "shape": [6, 384]}
    assert sorted(p.name for p in folder.iterdir()) == sorted(
        [MODEL_FILE, INFO_FILE, Path(MODEL_FILE).with_suffix(".bin").name]
    )
    assert json.loads((folder / INFO_FILE).read_text())["calibration_passages"] == 16
    # Two children: torch converts, then NNCF quantises in one that never imports torch
    # (the two together peaked at 2 GB in one process).
    assert [(step["step"], "torch" in step["imported"]) for step in steps] == [
        ("fp32", True), ("int8", False)
    ]
    assert "nncf" in steps[1]["imported"]


def test_without_openvino_int8_is_one_clear_error(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setitem(sys.modules, "openvino", None)  # what a missing package looks like
    monkeypatch.setattr("index.embeddings.MIN_CALIBRATION_PASSAGES", 2)
    model = SentenceEmbeddings(precision="int8", int8_dir=tmp_path / "int8")
    with pytest.raises(Int8Unavailable, match="needs OpenVINO") as raised:
        model.prepare(HELD_OUT)
    assert "\n" not in str(raised.value)


def test_an_int8_ingest_answers_the_seed_question_with_verbatim_quotes(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, built: Path
) -> None:
    monkeypatch.setattr("index.embeddings.MIN_CALIBRATION_PASSAGES", 4)
    calibrated_on: list[int] = []

    def shared_build(kind: str, _model: str, folder: Path,
                     calibration: Sequence[str] = ()) -> list[dict[str, Any]]:
        # The build itself is tested above; this ingest takes the run's shared model.
        assert kind == "int8"
        calibrated_on.append(len(calibration))
        copy_model(built, folder)
        return []

    monkeypatch.setattr("index.embeddings.build_in_child", shared_build)
    settings = load_settings(data_dir=tmp_path / "data", index={"precision": "int8"})
    dossier = Dossier(settings)
    report = dossier.ingestor().run([PROJECT / "corpus"], corpus_root=PROJECT / "corpus")
    assert report.added == 1 and calibrated_on and calibrated_on[0] >= 4
    assert (tmp_path / "data" / "int8" / MODEL_FILE).is_file()
    assert dossier.embedder.backend == "openvino-int8"

    # A new process on the same data dir: loads the saved model, answers from it.
    later = Dossier(load_settings(data_dir=tmp_path / "data", index={"precision": "int8"}))
    answer = later.answerer.ask("what are the obstacles?")
    assert later.embedder.backend == "openvino-int8"
    assert answer.answered
    quotes = " ".join(c.quote for c in answer.citations)
    for expected in ("regulatory systems", "Infrastructure gaps", "workforce development"):
        assert expected in quotes
    article = later.store.get_articles([answer.citations[0].article.id])[
        answer.citations[0].article.id
    ]
    for citation in answer.citations:
        assert article.text[citation.start : citation.end] == citation.quote



def test_token_counts_from_the_model_folder_match_the_transformers_tokenizer(
    embedder: SentenceEmbeddings,
) -> None:
    texts = [*HELD_OUT, "word " * 400, "Ünïcödé — “quotes” and e-mail@example.com"]
    ids = embedder.model.tokenizer(texts, add_special_tokens=False, truncation=False,
                                   verbose=False)["input_ids"]
    assert embedder.count_tokens(texts) == [len(row) for row in ids]
    assert embedder.dimension == embedder.model.get_embedding_dimension()
    assert embedder.max_tokens == embedder.model.max_seq_length


_QUESTION_IN_A_NEW_PROCESS = """
import json, sys
from pathlib import Path
from bot.factory import Dossier
from bot.settings import load_settings
dossier = Dossier(load_settings(data_dir=Path(sys.argv[1])))
answer = dossier.answerer.ask("what are the obstacles?")
heavy = sorted(m for m in ("torch", "sentence_transformers", "transformers",
                           "langchain_core.retrievers") if m in sys.modules)
print(json.dumps({"answered": answer.answered, "backend": dossier.embedder.backend,
                  "heavy": heavy, "compiled_before": dossier.embedder.openvino.loaded_from_cache}))
"""


def _ask_in_a_new_process(data_dir: Path) -> dict[str, object]:
    done = subprocess.run([sys.executable, "-c", _QUESTION_IN_A_NEW_PROCESS, str(data_dir)],
                          cwd=PROJECT, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-2000:]
    result: dict[str, object] = json.loads(done.stdout.strip().splitlines()[-1])
    return result


def test_a_new_process_answers_without_importing_torch(tmp_path: Path) -> None:
    # The seed alone is far too small to tune int8 on: its first ingest leaves a plain
    # OpenVINO copy, and a chat or `dossier ask` started later embeds with it.
    data_dir = tmp_path / "data"
    Dossier(load_settings(data_dir=data_dir)).ingest([PROJECT / "corpus"])
    result = _ask_in_a_new_process(data_dir)
    result.pop("compiled_before")
    assert result == {"answered": True, "backend": "openvino", "heavy": []}


def test_a_second_process_loads_the_model_the_first_compiled(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Compiling the model is most of a cold start's model cost; OpenVINO keeps the compiled
    # blob in index.compiled_cache, and the next process loads it.
    data_dir, cache = tmp_path / "data", tmp_path / "compiled"
    monkeypatch.setenv("DOSSIER_INDEX__COMPILED_CACHE", str(cache))
    Dossier(load_settings(data_dir=data_dir)).ingest([PROJECT / "corpus"])
    for blob in cache.glob("*.blob"):  # what the ingest itself compiled
        blob.unlink()
    first = _ask_in_a_new_process(data_dir)
    assert first["compiled_before"] is False
    assert len(list(cache.glob("*.blob"))) == 1
    second = _ask_in_a_new_process(data_dir)
    assert second["compiled_before"] is True
    assert second["answered"] is True and second["heavy"] == []


def test_compiled_models_off_or_unwritable_still_answer(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    data_dir = tmp_path / "data"
    Dossier(load_settings(data_dir=data_dir)).ingest([PROJECT / "corpus"])
    monkeypatch.setenv("DOSSIER_INDEX__COMPILED_CACHE", "off")
    assert _ask_in_a_new_process(data_dir)["compiled_before"] is False
    blocked = tmp_path / "a-file"
    blocked.write_text("not a folder")
    monkeypatch.setenv("DOSSIER_INDEX__COMPILED_CACHE", str(blocked / "cache"))
    result = _ask_in_a_new_process(data_dir)
    assert result["answered"] is True and result["compiled_before"] is False


def test_a_second_data_dir_copies_the_plain_model_instead_of_building_it(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # The plain copy depends on the model alone: building it needs a torch process
    # (seconds), so a new small data dir copies the one another data dir built.
    monkeypatch.setenv("DOSSIER_INDEX__COMPILED_CACHE", str(tmp_path / "compiled"))
    first = Dossier(load_settings(data_dir=tmp_path / "a"))
    first.ingest([PROJECT / "corpus"])
    assert first.embedder.backend == "openvino"

    def built_again(*_args: object, **_kwargs: object) -> None:
        raise AssertionError("the plain copy was built again")

    monkeypatch.setattr("index.embeddings.build_in_child", built_again)
    second = Dossier(load_settings(data_dir=tmp_path / "b"))
    second.ingest([PROJECT / "corpus"])
    assert second.embedder.backend == "openvino"
    assert (tmp_path / "b" / "int8" / "plain" / "model.xml").exists()
    assert second.answerer.ask("what are the obstacles?").answered


def test_a_question_is_embedded_on_its_own_compile_in_the_passages_space(built: Path) -> None:
    # One question runs on a compile of its own (both cores, f32, padded to a few widths);
    # its vector must still be the one a batch of passages would give it.
    model = SentenceEmbeddings(precision="int8", int8_dir=built)
    short = ["Who won?", "What are the obstacles?", *HELD_OUT]
    batch = model.encode(short)
    questions = np.stack([model.encode_question(text) for text in short])
    assert np.sum(batch * questions, axis=1).min() > 0.998  # bf16 against f32
    assert model.encode_question(short[0]) is model.encode_question(short[0])  # kept


def test_a_text_of_exactly_32_word_pieces_gets_its_true_vector(built: Path) -> None:
    # OpenVINO's bf16 CPU kernels give a wrong vector to a text filling exactly 32 word
    # pieces (where the CPU has bf16); such a batch is padded to 33. The question compile
    # computes in f32, right at every width.
    model = SentenceEmbeddings(precision="int8", int8_dir=built)
    assert model.files is not None
    text = ("The finance ministers of Mexico and Canada met in Ottawa on Tuesday to sign an "
            "agreement on critical minerals, lithium refining and the workforce they need in the.")
    assert len(Tokenize(model.files).encodings([text])[0].ids) == 32
    assert float(model.encode([text])[0] @ model.encode_question(text)) > 0.998


def test_calls_of_any_size_and_length_run_in_a_few_shapes_with_their_own_vectors(
        built: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    # OpenVINO keeps what it made for every input shape it runs, so an ingest's memory
    # grew with each new (rows, width) its pools brought. Rows and widths are padded to a
    # few values, and the padding must not reach any text's vector.
    model = SentenceEmbeddings(precision="int8", int8_dir=built, batch_size=8)
    shapes: set[tuple[int, int]] = set()
    padded = Tokenize.padded

    def recorded(self: Tokenize, encodings: Any, **kwargs: Any) -> dict[str, Any]:
        features = padded(self, encodings, **kwargs)
        shapes.add(features["input_ids"].shape)
        return features

    monkeypatch.setattr(Tokenize, "padded", recorded)
    words = " ".join(HELD_OUT).split()
    texts = [" ".join(words[at : at + 1 + 7 * at % 90]) for at in range(40)]
    alone = np.stack([model.encode([text])[0] for text in texts])
    for count in (3, 5, 7, 11, 13, 40):
        together = model.encode(texts[:count])
        assert np.sum(together * alone[:count], axis=1).min() > 0.999
    rows, widths = {r for r, _ in shapes}, {w for _, w in shapes}
    assert rows <= {1, 2, 4, 8}
    assert widths <= {16, 33, 48, 64, 96, 128, 160, 192, 224, 256}  # 32 runs as 33
    assert len(widths) >= 3  # the texts did come in many lengths


def test_the_batch_compile_let_go_after_an_ingest_is_made_again_when_needed(
        built: Path) -> None:
    # An ingest lets the batch compile's buffers go before it rebuilds its indexes; a
    # later batch (an upload in the bot) compiles it again and gets the same vectors.
    model = SentenceEmbeddings(precision="int8", int8_dir=built)
    before = model.encode(HELD_OUT)
    assert model.openvino is not None
    model.release_batch_buffers()
    assert "batch" not in model.openvino._compiled
    assert np.sum(model.encode(HELD_OUT) * before, axis=1).min() > 0.9999
