"""The `dossier` command as users and scripts run it: JSON contracts, exit codes, piped chat."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from tests.support import SEED

pytestmark = pytest.mark.slow

DOSSIER = [sys.executable, "-m", "bot.cli"]


def _run(args: list[str], cwd: Path, stdin: str | None = None,
         env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [*DOSSIER, *args], cwd=cwd, input=stdin, capture_output=True, text=True, timeout=300,
        env={**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parent.parent),
             **(env or {})},
    )


@pytest.fixture(scope="module")
def workdir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A folder with corpus/ holding the seed article, and its index built by the CLI."""
    folder = tmp_path_factory.mktemp("cli")
    (folder / "corpus").mkdir()
    shutil.copy(SEED, folder / "corpus" / SEED.name)
    (folder / "corpus" / "empty.txt").write_text("   \n", encoding="utf-8")
    result = _run(["--data-dir", "data", "ingest", "--json"], folder)
    assert result.returncode == 0, result.stderr
    report = json.loads(result.stdout)
    assert report["added"] == 1 and report["passages"] > 3
    assert [s["path"] for s in report["skipped"]] == ["corpus/empty.txt"]
    assert set(report) == {"added", "updated", "unchanged", "removed", "skipped", "passages",
                           "seconds"}
    return folder


def test_a_quiet_ingest_and_ask_write_nothing_to_standard_error(tmp_path: Path) -> None:
    """Library debug lines (bm25s sets its own logger to DEBUG) never reach the user."""
    (tmp_path / "corpus").mkdir()
    shutil.copy(SEED, tmp_path / "corpus" / SEED.name)
    ingested = _run(["--data-dir", "data", "ingest", "--json"], tmp_path)
    asked = _run(["--data-dir", "data", "ask", "what are the obstacles?", "--json"], tmp_path)
    assert ingested.returncode == asked.returncode == 0
    assert ingested.stderr == "" and asked.stderr == ""


def test_articles_lists_the_seed_article(workdir: Path) -> None:
    result = _run(["--data-dir", "data", "articles", "--json"], workdir)
    assert result.returncode == 0, result.stderr
    [article] = json.loads(result.stdout)
    assert article["title"] == "Mexico and Canada Plan Joint Action on Critical Minerals"
    assert article["author"] == "Fiaz Ahmed"
    assert article["path"] == f"corpus/{SEED.name}"


def test_reingest_changes_nothing(workdir: Path) -> None:
    result = _run(["--data-dir", "data", "ingest", "--json"], workdir)
    report = json.loads(result.stdout)
    assert (report["added"], report["updated"], report["unchanged"]) == (0, 0, 1)


def test_ask_json_follows_the_contract(workdir: Path) -> None:
    result = _run(["--data-dir", "data", "ask", "what are the obstacles?", "--json"], workdir)
    assert result.returncode == 0, result.stderr
    answer = json.loads(result.stdout)
    assert answer["answered"] is True and answer["citations"]
    text = SEED.read_text(encoding="utf-8")
    for c in answer["citations"]:
        assert c["quote"] in text  # cleaning keeps body sentences byte for byte
        assert c["article"]["path"] == f"corpus/{SEED.name}"
        assert c["link"] is None  # the seed article has no URL


def test_piped_chat_answers_each_line_and_follow_ups(workdir: Path) -> None:
    result = _run(["--data-dir", "data", "chat"], workdir,
                  stdin="what are the obstacles?\nwhich of them worries investors?\n")
    assert result.returncode == 0, result.stderr
    assert "Infrastructure gaps also pose a challenge." in result.stdout
    assert "foreign investors" in result.stdout.split("which of them worries investors?")[1]


def test_user_errors_are_one_line_and_exit_1(tmp_path: Path) -> None:
    no_index = _run(["--data-dir", "empty", "ask", "anything?"], tmp_path)
    assert no_index.returncode == 1
    assert no_index.stderr.strip().count("\n") == 0 and "dossier ingest" in no_index.stderr
    bad_setting = _run(["ask", "x"], tmp_path, env={"DOSSIER_RETRIEVAL__K": "many"})
    assert bad_setting.returncode == 1 and "retrieval.k" in bad_setting.stderr
    assert "Traceback" not in bad_setting.stderr
    missing = _run(["--data-dir", "d", "ingest", "nowhere"], tmp_path)
    assert missing.returncode == 1 and "nowhere" in missing.stderr
