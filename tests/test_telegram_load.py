"""Many users at once with Bot API faults: no answer lost or doubled, every chat in order."""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Iterator
from functools import partial
from pathlib import Path

import httpx
import pytest
from telegram.error import BadRequest, NetworkError, TimedOut

from bench.telegram_load import ingest_seed, run_load
from bench.telegram_users import FaultRates, LoadPlan, LoadResult, Users, drive_users, inject_faults
from bot.factory import Dossier
from bot.settings import load_settings
from bot.telegram.delivery import deliver, not_delivered
from index.embeddings import SentenceEmbeddings
from tests.support.telegram_server import TelegramTestServer

USERS, QUESTIONS_EACH = 20, 3


@pytest.fixture
def server() -> Iterator[TelegramTestServer]:
    with TelegramTestServer(seed=3) as srv:
        yield srv


@pytest.mark.slow
async def test_twenty_users_with_5xx_and_429_faults_get_every_answer_once_in_order(
    tmp_path: Path, embedder: SentenceEmbeddings, server: TelegramTestServer,
) -> None:
    corpus, data = ingest_seed(tmp_path, embedder)
    dossier = Dossier(load_settings(data_dir=data, corpus={"path": corpus}, telegram={
        "api_base_url": server.base_url, "file_base_url": server.base_file_url,
    }), embedder=embedder)
    inject_faults(server, rate_5xx=0.05, rate_429=0.10, retry_after=1, seed=11)

    plan = LoadPlan(users=USERS, questions_per_user=QUESTIONS_EACH, ramp_s=1.0, budget_s=45)

    result = await run_load(dossier, server.token, partial(drive_users, server, plan),
                            persistence=tmp_path / "p")

    assert_every_answer_once_in_order(result)
    # Typing actions bypass the message rate limiter but are still sent for every question.
    assert len(server.chat_actions()) >= result.questions


@pytest.mark.slow
async def test_the_users_and_the_server_in_a_process_of_their_own_get_the_same(
    tmp_path: Path, embedder: SentenceEmbeddings,
) -> None:
    corpus, data = ingest_seed(tmp_path, embedder)
    plan = LoadPlan(users=USERS, questions_per_user=QUESTIONS_EACH, ramp_s=1.0, budget_s=45)
    users = Users(plan, FaultRates(rate_5xx=0.05, rate_429=0.10, retry_after=1, seed=11),
                  process=True)
    try:
        dossier = Dossier(load_settings(data_dir=data, corpus={"path": corpus}, telegram={
            "api_base_url": users.base_url, "file_base_url": users.base_file_url,
        }), embedder=embedder)
        result = await run_load(dossier, users.token, users.run, persistence=tmp_path / "p")
    finally:
        users.close()

    assert_every_answer_once_in_order(result)
    assert result.server_cpu_s is not None  # measured in the other process


def assert_every_answer_once_in_order(result: LoadResult) -> None:
    assert result.finished and result.questions == USERS * QUESTIONS_EACH
    assert (result.lost, result.duplicated, result.error_replies) == (0, 0, 0)
    assert result.chats_out_of_order == 0
    assert result.injected_5xx >= 1 and result.injected_429 >= 1  # both paths were taken
    assert result.send_attempts == result.answered + result.injected_5xx + result.injected_429


def _raised(error: Exception, cause: BaseException | None) -> Exception:
    error.__cause__ = cause
    return error


@pytest.mark.parametrize(("error", "retried"), [
    (_raised(NetworkError("Bad Gateway"), None), True),  # Telegram answered 502
    (_raised(NetworkError("Internal Server Error"), None), True),
    (_raised(NetworkError("httpx.ConnectError: refused"), httpx.ConnectError("x")), True),
    (_raised(TimedOut("Pool timeout"), httpx.PoolTimeout("x")), True),  # never sent
    (_raised(TimedOut(), httpx.ConnectTimeout("x")), True),
    (_raised(TimedOut(), httpx.ReadTimeout("x")), False),  # sent: Telegram may have it
    (_raised(NetworkError("httpx.RemoteProtocolError"), httpx.RemoteProtocolError("x")),
     False),  # dropped mid-request: may have been delivered
    (_raised(BadRequest("Bad Request: message is too long"), None), False),
])
def test_only_sends_that_surely_delivered_nothing_are_retried(error: NetworkError,
                                                              retried: bool) -> None:
    assert not_delivered(error) is retried


async def test_deliver_retries_what_was_not_delivered_and_nothing_else() -> None:
    attempts: list[str] = []

    def flaky(failures: list[Exception]) -> Callable[[], Awaitable[str]]:
        async def send() -> str:
            attempts.append("try")
            if failures:
                raise failures.pop(0)
            return "sent"
        return send

    assert await deliver(flaky([NetworkError("Bad Gateway"), NetworkError("Bad Gateway")])) \
        == "sent"
    assert len(attempts) == 3
    attempts.clear()
    with pytest.raises(TimedOut):
        await deliver(flaky([_raised(TimedOut(), httpx.ReadTimeout("x"))]))
    assert len(attempts) == 1  # may have been delivered: never sent twice
