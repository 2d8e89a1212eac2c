"""Each passage's place, sentence spans and date, kept beside Chroma by generation."""

from __future__ import annotations

import json
import logging
from array import array
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from index.atomic_folder import replace_folder

log = logging.getLogger(__name__)

_META = "dossier.json"
_ARRAYS = "table.npz"


@dataclass(frozen=True)
class PassageRow:
    """One passage as the table knows it: everything but its text (cut from its article)."""

    id: str
    article_id: str
    start: int
    end: int
    heading: str | None
    sentences: tuple[tuple[int, int], ...]
    published: str | None


class PassageTable:
    """What retrieval needs of each passage to fuse, date, rank and cut it, in memory.

    Chroma holds the same facts in each passage's metadata; reading them there cost a
    `get` per question (the keyword-only hits, the passages kept) and, for an index whose
    passages do not carry their article's date, a read of the registry. Like the keyword
    indexes, the table is valid for one `generation` of the store and rebuilt when that
    changes. Dates come from the article registry, so an index built before passages
    carried them is dated all the same.

    Compact on purpose (a bot process holds it whole): offsets and sentence spans are
    integer arrays, articles and their dates are stored once.
    """

    def __init__(self, ids: list[str], article_ids: list[str], published: list[str | None],
                 headings: list[str | None], arrays: Mapping[str, np.ndarray],
                 generation: str) -> None:
        self.ids = ids
        self.generation = generation
        self._article_ids = article_ids
        self._published = published
        self._headings = headings
        self._article_row = arrays["article_row"]
        self._bounds = arrays["bounds"]  # (passages, 2): start, end
        self._spans = arrays["spans"]  # (sentences, 2), passage by passage
        self._span_from = arrays["span_from"]  # passage i's spans: span_from[i]:span_from[i+1]
        self._row_of = {pid: row for row, pid in enumerate(ids)}

    @classmethod
    def build(cls, metadatas: Iterable[tuple[str, Mapping[str, Any]]],
              published: Mapping[str, str | None], generation: str) -> PassageTable:
        """From (passage id, Chroma metadata) pairs and each article's date."""
        rows = PassageTableRows()
        for pid, meta in metadatas:
            rows.add(pid, meta)
        return rows.table(published, generation)

    def __len__(self) -> int:
        return len(self.ids)

    def __contains__(self, passage_id: object) -> bool:
        return passage_id in self._row_of

    def article_and_date(self, passage_id: str) -> tuple[str, str | None] | None:
        """The passage's article and its date (all ranking needs), or None when this
        generation does not hold it; cheaper than `row` for the hundred candidates a
        question ranks."""
        at = self._row_of.get(passage_id)
        if at is None:
            return None
        article = int(self._article_row[at])
        return self._article_ids[article], self._published[article]

    def row(self, passage_id: str) -> PassageRow | None:
        """The passage's row, or None when this generation does not hold it."""
        at = self._row_of.get(passage_id)
        if at is None:
            return None
        article = int(self._article_row[at])
        start, end = (int(x) for x in self._bounds[at])
        spans = self._spans[self._span_from[at] : self._span_from[at + 1]]
        return PassageRow(
            id=passage_id,
            article_id=self._article_ids[article],
            start=start,
            end=end,
            heading=self._headings[at],
            sentences=tuple((int(s), int(e)) for s, e in spans),
            published=self._published[article],
        )

    def save(self, folder: Path) -> None:
        """Write atomically: a crash mid-save leaves the previous table, never half of one."""

        def write(staging: Path) -> None:
            np.savez(staging / _ARRAYS, article_row=self._article_row, bounds=self._bounds,
                     spans=self._spans, span_from=self._span_from)
            meta = {"generation": self.generation, "ids": self.ids,
                    "article_ids": self._article_ids, "published": self._published,
                    "headings": self._headings}
            (staging / _META).write_text(json.dumps(meta), encoding="utf-8")

        replace_folder(folder, write)

    @classmethod
    def load(cls, folder: Path) -> PassageTable | None:
        """The saved table, or None when there is none or it is unreadable (said in the
        log: the caller rebuilds it)."""
        try:
            meta = json.loads((folder / _META).read_text(encoding="utf-8"))
            with np.load(folder / _ARRAYS, allow_pickle=False) as saved:
                arrays = {name: saved[name] for name in
                          ("article_row", "bounds", "spans", "span_from")}
            ids = [str(i) for i in meta["ids"]]
            if not len(ids) == len(arrays["article_row"]) == len(arrays["span_from"]) - 1:
                raise ValueError(f"{len(ids)} ids for {len(arrays['article_row'])} rows")
            return cls(ids, list(meta["article_ids"]), list(meta["published"]),
                       list(meta["headings"]), arrays, str(meta["generation"]))
        except FileNotFoundError:
            return None
        except (OSError, ValueError, KeyError) as exc:
            log.warning("passage table in %s is unreadable (%r): rebuilding it", folder, exc)
            return None


class PassageTableRows:
    """A passage table's rows gathered one passage at a time, so the table can be built
    while the passages are read for something else (the keyword index: one read of every
    passage, not two)."""

    def __init__(self) -> None:
        self.ids: list[str] = []
        self._article_of: dict[str, int] = {}
        self._headings: list[str | None] = []
        # Machine-int arrays, not lists of tuples: at 141k passages (850k sentence spans)
        # the tuples took about 150 MB while the table was built, the arrays a tenth of that.
        self._article_row = array("i")
        self._bounds = array("q")  # start, end, start, end, ...
        self._spans = array("q")  # the same, sentence by sentence
        self._span_from = array("q", [0])

    def add(self, passage_id: str, meta: Mapping[str, Any]) -> None:
        """One passage, from its Chroma metadata."""
        self.ids.append(passage_id)
        article_id = str(meta["article_id"])
        self._article_row.append(self._article_of.setdefault(article_id, len(self._article_of)))
        self._bounds.extend((int(meta["start"]), int(meta["end"])))
        heading = meta.get("heading")
        self._headings.append(str(heading) if heading else None)
        for start, end in json.loads(meta.get("sentences", "[]")):
            self._spans.extend((int(start), int(end)))
        self._span_from.append(len(self._spans) // 2)

    def table(self, published: Mapping[str, str | None], generation: str) -> PassageTable:
        """The table of the rows added, its articles dated from `published`."""
        article_ids = list(self._article_of)
        arrays: dict[str, np.ndarray] = {
            "article_row": np.frombuffer(self._article_row, dtype=np.int32),
            "bounds": np.frombuffer(self._bounds, dtype=np.int64).reshape(-1, 2),
            "spans": np.frombuffer(self._spans, dtype=np.int64).reshape(-1, 2),
            "span_from": np.frombuffer(self._span_from, dtype=np.int64),
        }
        dates = [published.get(a) for a in article_ids]
        return PassageTable(self.ids, article_ids, dates, self._headings, arrays, generation)
