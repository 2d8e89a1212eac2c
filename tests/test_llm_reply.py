"""LLM replies read leniently and checked one sentence at a time (no model, no server)."""

from __future__ import annotations

import json

from langchain_core.messages import AIMessage, AIMessageChunk

from bot.llm_reply import parse_reply, reply_text
from bot.llm_verify import SentenceVerifier, VerifiedStream, split_sentences
from bot.quotes import verify_quote
from bot.retrieval import Retrieved
from index.models import Article
from index.store import StoredPassage

TEXT = (
    "Trade figures came out on Monday. Exports to the U.S. rose 3.5% last year, the "
    "ministry said. Infrastructure gaps also pose a challenge. Another key issue is "
    "workforce development."
)
ARTICLE = Article(id="a", title="Trade", text=TEXT)
EXPORTS = "Exports to the U.S. rose 3.5% last year, the ministry said."
GAPS = "Infrastructure gaps also pose a challenge."
QUESTION = "how did exports do and what are the obstacles?"


def _retrieved() -> list[Retrieved]:
    passage = StoredPassage("p1", "a", 0, len(TEXT), TEXT, None, ())
    return [Retrieved(passage, 1.0, 1.0, 0)]


def _stream() -> VerifiedStream:
    return VerifiedStream(SentenceVerifier(QUESTION, _retrieved(), {"a": ARTICLE}))


def _feed_growing(stream: VerifiedStream, reply: str, step: int = 7) -> list[list[str]]:
    """Feed `reply` as a model writes it, a few characters at a time."""
    released = []
    for end in range(step, len(reply), step):
        released.append(stream.feed(parse_reply(reply[:end], final=False), final=False))
    released.append(stream.feed(parse_reply(reply, final=True), final=True))
    return released


def test_abbreviations_and_decimals_stay_inside_their_sentence() -> None:
    prose = "Exports to the U.S. rose 3.5% last year [1]. Gaps remain [1]."
    assert split_sentences(prose) == ["Exports to the U.S. rose 3.5% last year [1].",
                                      "Gaps remain [1]."]


def test_a_sentence_with_us_and_a_decimal_survives_whole() -> None:
    # The old regex split cut it into "5% last year [1]." and dropped the rest.
    stream = _stream()
    reply = (f'QUOTES:\n[1] "{EXPORTS}"\nANSWER: Exports to the U.S. rose 3.5% last year [1].')
    _feed_growing(stream, reply)
    assert stream.verifier.text == "Exports to the U.S. rose 3.5% last year [1]."
    (citation,) = stream.verifier.citations
    assert citation.quote == EXPORTS and verify_quote(ARTICLE, citation.start, citation.end,
                                                      citation.quote)


def test_inline_quotes_are_read_and_the_sentence_before_waits_for_them() -> None:
    stream = _stream()
    reply = f'The project faces obstacles and gaps [1]. "{GAPS}" [1]'
    released = _feed_growing(stream, reply)
    flat = [s for step in released for s in step]
    assert flat == ["The project faces obstacles and gaps [1].", f'"{GAPS}" [1]']
    assert [c.quote for c in stream.verifier.citations] == [GAPS]


def test_json_answer_streams_sentences_once_their_quotes_are_in() -> None:
    stream = _stream()
    reply = json.dumps({
        "quotes": [{"passage": 1, "quote": EXPORTS}, {"passage": 1, "quote": GAPS}],
        "answer": "Exports to the U.S. rose 3.5% last year [1]. Infrastructure gaps "
                  "pose a challenge [1]. Mining was banned in 2019 [1].",
    })
    released = _feed_growing(stream, reply)
    first = next(i for i, step in enumerate(released) if step)
    assert first < len(released) - 1  # the first sentence came before the reply was done
    assert stream.verifier.sentences == [
        "Exports to the U.S. rose 3.5% last year [1].",
        "Infrastructure gaps pose a challenge [2].",
    ]
    assert "banned" not in stream.verifier.text  # a claim no quote carries never shows


def test_a_tool_call_reply_reads_like_json() -> None:
    arguments = json.dumps({"quotes": [{"passage": 1, "quote": GAPS}],
                            "answer": "Infrastructure gaps are a challenge [1]."})
    whole = AIMessage(content="", tool_calls=[{"name": "cited_answer", "id": "c",
                                               "args": json.loads(arguments)}])
    chunk = AIMessageChunk(content="", tool_call_chunks=[
        {"name": "cited_answer", "args": arguments[:30], "id": "c", "index": 0}])
    assert parse_reply(reply_text(whole)).quotes == [(1, GAPS)]
    partial = parse_reply(reply_text(chunk), final=False)
    assert partial.quotes == [] and partial.answer == ""


def test_an_invented_quote_never_backs_a_sentence() -> None:
    stream = _stream()
    reply = ('QUOTES:\n[1] "Mexico has banned all foreign mining companies."\n'
             "ANSWER: Mexico banned foreign mining companies [1].")
    released = _feed_growing(stream, reply)
    assert not any(released) and stream.verifier.citations == []


def test_quotes_after_the_answer_still_count_once_the_reply_is_done() -> None:
    stream = _stream()
    reply = f'ANSWER: Infrastructure gaps are a challenge [1].\nQUOTES:\n[1] "{GAPS}"\n'
    released = _feed_growing(stream, reply)
    assert released[-1] == ["Infrastructure gaps are a challenge [1]."]
    assert not any(released[:-1])


def test_not_in_articles_is_a_refusal_in_every_format() -> None:
    for reply in ("NOT_IN_ARTICLES", '{"quotes": [], "answer": "NOT_IN_ARTICLES"}'):
        assert parse_reply(reply).cannot_answer


def test_a_quote_that_runs_on_past_the_article_keeps_only_its_verbatim_sentences() -> None:
    stream = _stream()
    claimed = f"{GAPS} Roads and ports will be built by 2030 with federal money."
    reply = json.dumps({"quotes": [{"passage": 1, "quote": claimed}],
                        "answer": "Infrastructure gaps are a challenge [1]."})
    _feed_growing(stream, reply)
    (citation,) = stream.verifier.citations
    assert citation.quote == GAPS  # the invented run-on is never shown
    assert stream.verifier.text == "Infrastructure gaps are a challenge [1]."


def _two_articles_stream() -> VerifiedStream:
    """Passage 1 from the trade article, passage 2 from another one."""
    other = Article(id="b", title="Ports", text=PORTS)
    retrieved = [*_retrieved(),
                 Retrieved(StoredPassage("p2", "b", 0, len(PORTS), PORTS, None, ()), 0.5, 0.5, 1)]
    return VerifiedStream(SentenceVerifier(QUESTION, retrieved, {"a": ARTICLE, "b": other}))


PORTS = "The port of Veracruz will double its capacity. Dredging starts in May."
VERACRUZ = "The port of Veracruz will double its capacity."


def test_a_quote_under_a_wrong_passage_number_is_found_where_it_stands() -> None:
    # SmolLM2 under a JSON schema writes passage numbers such as 1148844848888888 or 1
    # for a quote from passage 2: the quote is looked for in every passage of the prompt.
    stream = _two_articles_stream()
    reply = json.dumps({
        "quotes": [{"passage": 1148844848888888, "quote": GAPS},
                   {"passage": 1, "quote": VERACRUZ},
                   {"passage": 7, "quote": "Mexico has banned all foreign mining companies."}],
        "answer": "Infrastructure gaps are a challenge [1148844848888888]. Veracruz will "
                  "double its capacity [1]. Mexico banned foreign mining [7].",
    })
    _feed_growing(stream, reply)
    assert [(c.quote, c.article.id) for c in stream.verifier.citations] == [
        (GAPS, "a"), (VERACRUZ, "b")]
    assert stream.verifier.sentences == ["Infrastructure gaps are a challenge [1].",
                                         "Veracruz will double its capacity [2]."]


def test_a_sentence_copied_from_a_passage_without_a_marker_is_its_own_quote() -> None:
    # SmolLM2 often answers by copying passage sentences and cites nothing: a sentence that
    # stands verbatim in a passage is shown with itself as its quote; other unmarked prose,
    # and a fragment cut off at max_tokens, are still dropped.
    stream = _two_articles_stream()
    reply = json.dumps({"quotes": [], "answer": f"{GAPS} Roads will be built by 2030. "
                                                f"{VERACRUZ} Dredging starts"})
    _feed_growing(stream, reply)
    assert stream.verifier.sentences == ["Infrastructure gaps also pose a challenge [1].",
                                         "The port of Veracruz will double its capacity [2]."]
    assert [(c.quote, c.article.id) for c in stream.verifier.citations] == [
        (GAPS, "a"), (VERACRUZ, "b")]
    for citation in stream.verifier.citations:
        article = ARTICLE if citation.article.id == "a" else Article("b", "Ports", PORTS)
        assert verify_quote(article, citation.start, citation.end, citation.quote)
