"""Logs cannot be forged by a name or a question, and deployments may log JSON lines."""

from __future__ import annotations

import io
import json
import logging
import shutil
from collections.abc import Iterator
from pathlib import Path

import pytest

from bot.factory import Dossier
from bot.logs import configure_logging, log_value
from bot.settings import load_settings
from tests.support import SEED
from tests.support.fakes import FakeEmbeddings

FORGED = "2026-11-30 10:00:00,000 INFO bot.telegram_app: user 1002 added to admin_user_ids"
HOSTILE_NAME = f"x.txt\n{FORGED}\x00\r\u2028.txt"
BODY = b"The harbour of Vellmar reopened on Monday after the storm damaged three cranes."


@pytest.fixture
def root_logging() -> Iterator[None]:
    """The root logger as the test found it, whatever configure_logging did to it."""
    root = logging.getLogger()
    handlers, level = list(root.handlers), root.level
    for handler in handlers:
        root.removeHandler(handler)
    yield
    for handler in list(root.handlers):
        root.removeHandler(handler)
    for handler in handlers:
        root.addHandler(handler)
    root.setLevel(level)


def _upload_hostile_name(tmp_path: Path, isolated: Path) -> None:
    corpus = tmp_path / "corpus"
    corpus.mkdir()
    shutil.copy(SEED, corpus / SEED.name)
    settings = load_settings(data_dir=isolated, corpus={"path": corpus})
    Dossier(settings, embedder=FakeEmbeddings()).add_document(HOSTILE_NAME, BODY)


def test_a_forged_line_in_an_upload_name_stays_inside_its_record(
    tmp_path: Path, isolated: Path, root_logging: None
) -> None:
    out = io.StringIO()
    configure_logging("text", logging.INFO, stream=out)
    _upload_hostile_name(tmp_path, isolated)
    lines = out.getvalue().splitlines()
    (saved,) = [line for line in lines if "saved as" in line]
    assert "\\x0a2026-11-30 10:00:00,000 INFO" in saved and "\\x00" in saved
    assert not [line for line in lines if line.startswith(FORGED[:23])]
    assert "\x00" not in out.getvalue() and "\u2028" not in out.getvalue()


def test_a_library_message_with_line_breaks_is_one_line(root_logging: None) -> None:
    out = io.StringIO()
    configure_logging("text", logging.INFO, stream=out)
    logging.getLogger("some.library").warning("reading %s", f"a.txt\n{FORGED}")
    assert len(out.getvalue().splitlines()) == 1


def test_json_lines_keep_each_record_on_one_line_and_the_name_intact(
    tmp_path: Path, isolated: Path, root_logging: None
) -> None:
    out = io.StringIO()
    configure_logging("json", logging.INFO, stream=out)
    _upload_hostile_name(tmp_path, isolated)
    try:
        raise RuntimeError("boom\nagain")
    except RuntimeError:
        logging.getLogger("tests.logs").exception("failed on %s", "q")
    records = [json.loads(line) for line in out.getvalue().splitlines()]
    assert {"time", "level", "logger", "message"} <= records[0].keys()
    (saved,) = [r for r in records if "saved as" in r["message"]]
    assert saved["logger"] == "bot.factory" and saved["level"] == "INFO"
    assert "RuntimeError: boom" in records[-1]["exception"]


def test_the_log_format_is_a_setting(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("DOSSIER_LOG__FORMAT", "json")
    assert load_settings().log.format == "json"
    assert load_settings().log.level == "INFO"


def test_log_value_quotes_and_escapes() -> None:
    assert log_value('say "hi"\n\\') == '"say \\"hi\\"\\x0a\\\\"'
    assert log_value("é 🙂") == '"é 🙂"'
    assert log_value("x" * 300).endswith('…"')
