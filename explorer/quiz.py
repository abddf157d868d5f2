"""Human evaluation: a blind "real or generated?" quiz shared by everyone connected to the app.

A teacher builds a deck (real and generated samples, labelled only here); each participant, one
browser session with its own id, sees the same items in an order shuffled from that id, votes
"real" or "generated" and rates realism 1-5. The store is module-level, guarded by a lock, so
the tallies gather every participant: how often generated samples fooled people, item by item.
"""
from __future__ import annotations

import csv
import random
import threading
import time
import uuid
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from . import tempfiles

VOTES = ("real", "generated")
RATINGS = (1, 2, 3, 4, 5)
MAX_ITEMS = 200  # a deck bigger than this is no longer a quiz a class can finish


@dataclass(frozen=True)
class Item:
    """One quiz picture. image: uint8 (H, W) or (H, W, 3); source: 'real' or 'generated'."""

    id: int
    source: str
    image: np.ndarray


@dataclass(frozen=True)
class Vote:
    participant: str
    item: int
    vote: str
    rating: int
    time: float


@dataclass
class Deck:
    """A set of items everybody answers; `name` says what the generated ones came from."""

    id: str
    name: str
    items: list[Item]
    created: float = field(default_factory=time.time)

    def order_for(self, participant: str) -> list[int]:
        """The item ids in this participant's own random (but repeatable) order."""
        ids = [it.id for it in self.items]
        random.Random(f"{self.id}:{participant}").shuffle(ids)
        return ids


def make_deck(real: list[np.ndarray], generated: list[np.ndarray], name: str, seed: int = 0) -> Deck:
    """A deck from uint8 pictures of real data and of model samples; item ids are shuffled so an
    id says nothing about the source."""
    if not real or not generated:
        raise ValueError(f"a quiz needs real and generated pictures, got {len(real)} real and {len(generated)} generated")
    if len(real) + len(generated) > MAX_ITEMS:
        raise ValueError(f"a quiz holds at most {MAX_ITEMS} pictures, got {len(real) + len(generated)}")
    pairs = [("real", im) for im in real] + [("generated", im) for im in generated]
    random.Random(seed).shuffle(pairs)
    items = [Item(i, src, np.ascontiguousarray(im, dtype=np.uint8)) for i, (src, im) in enumerate(pairs)]
    return Deck(uuid.uuid4().hex[:12], name, items)


class QuizStore:
    """The active deck and every vote cast on it; safe to use from many request threads."""

    def __init__(self):
        self._lock = threading.Lock()
        self._deck: Deck | None = None
        self._votes: dict[tuple[str, int], Vote] = {}  # (participant, item) -> latest vote
        self._revealed = False  # the teacher has revealed which pictures were real

    def set_deck(self, deck: Deck) -> None:
        """Make `deck` the active quiz; votes on the previous deck are dropped, the answers hidden."""
        with self._lock:
            self._deck = deck
            self._votes = {}
            self._revealed = False

    def reveal(self, on: bool = True) -> None:
        """Show (or hide again) the true source of the answered pictures in the results."""
        with self._lock:
            self._revealed = bool(on)

    @property
    def revealed(self) -> bool:
        with self._lock:
            return self._revealed

    @property
    def deck(self) -> Deck | None:
        with self._lock:
            return self._deck

    def next_item(self, participant: str, deck_id: str | None = None) -> tuple[Item | None, int, int]:
        """(the first item this participant has not answered or None, answered count, deck size)."""
        with self._lock:
            deck = self._deck
            if deck is None or (deck_id is not None and deck.id != deck_id):
                return None, 0, 0
            done = {i for (p, i) in self._votes if p == participant}
            for item_id in deck.order_for(participant):
                if item_id not in done:
                    return deck.items[item_id], len(done), len(deck.items)
            return None, len(done), len(deck.items)

    def vote(self, participant: str, deck_id: str, item_id: int, vote: str, rating: int) -> None:
        """Record (or replace) one participant's answer on one item of the active deck."""
        if vote not in VOTES:
            raise ValueError(f"vote must be one of {VOTES}, got {vote!r}")
        if isinstance(rating, bool) or int(rating) != rating or int(rating) not in RATINGS:
            raise ValueError(f"rating must be an integer from 1 to 5, got {rating!r}")
        if not participant:
            raise ValueError("a vote needs a participant id")
        with self._lock:
            deck = self._deck
            if deck is None or deck.id != deck_id:
                raise ValueError("that quiz is no longer active: a new one was started; join it to go on")
            if not 0 <= item_id < len(deck.items):
                raise ValueError(f"item must be between 0 and {len(deck.items) - 1}, got {item_id}")
            self._votes[(participant, item_id)] = Vote(participant, item_id, vote, int(rating), time.time())

    def tallies(self) -> dict:
        """Per-item and overall results across all participants.

        fooled_rate: share of votes on generated items that said "real" (higher = better model);
        accuracy: share of all votes that named the true source (0.5 = people are guessing).
        """
        with self._lock:
            deck, votes = self._deck, list(self._votes.values())
        if deck is None:
            return {"deck": None, "participants": 0, "votes": 0, "items": []}
        rows = []
        for it in deck.items:
            vs = [v for v in votes if v.item == it.id]
            said_real = sum(v.vote == "real" for v in vs)
            rows.append({
                "item": it.id, "source": it.source, "votes": len(vs), "said_real": said_real,
                "said_generated": len(vs) - said_real,
                "correct": sum(v.vote == it.source for v in vs),
                "mean_rating": float(np.mean([v.rating for v in vs])) if vs else None,
            })

        def share(num, den):
            return num / den if den else None

        gen = [r for r in rows if r["source"] == "generated"]
        real = [r for r in rows if r["source"] == "real"]
        gen_votes = sum(r["votes"] for r in gen)
        real_votes = sum(r["votes"] for r in real)

        def mean_rating(group):
            rs = [v.rating for v in votes if deck.items[v.item].source == group]
            return float(np.mean(rs)) if rs else None

        return {
            "deck": deck.id, "name": deck.name,
            "participants": len({v.participant for v in votes}), "votes": len(votes),
            "fooled_rate": share(sum(r["said_real"] for r in gen), gen_votes),
            "real_recognised": share(sum(r["said_real"] for r in real), real_votes),
            "accuracy": share(sum(r["correct"] for r in rows), len(votes)),
            "mean_rating_generated": mean_rating("generated"),
            "mean_rating_real": mean_rating("real"),
            "items": rows,
        }

    def export_csv(self, folder: str | Path | None = None) -> Path:
        """Every vote, one row each, plus the item's true source; returns the CSV's path."""
        with self._lock:
            deck, votes = self._deck, sorted(self._votes.values(), key=lambda v: v.time)
        if deck is None:
            raise ValueError("no quiz has been started yet, so there is nothing to export")
        folder = Path(folder or tempfiles.mkdtemp(prefix="quiz-"))
        folder.mkdir(parents=True, exist_ok=True)
        path = folder / f"quiz-{deck.id}.csv"
        with path.open("w", newline="") as f:
            w = csv.writer(f)
            w.writerow(["deck", "deck_name", "participant", "item", "source", "vote", "correct", "rating", "unix_time"])
            for v in votes:
                src = deck.items[v.item].source
                w.writerow([deck.id, deck.name, v.participant, v.item, src, v.vote, int(v.vote == src), v.rating,
                            f"{v.time:.3f}"])
        return path


STORE = QuizStore()  # the one quiz every browser session of this app shares
