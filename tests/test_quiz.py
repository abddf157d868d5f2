"""The shared real-or-generated quiz store: decks, per-participant order, votes, tallies, CSV."""
from __future__ import annotations

import csv
import threading

import numpy as np
import pytest

from explorer.quiz import MAX_ITEMS, QuizStore, make_deck


def pictures(n, value):
    return [np.full((4, 4), value + i, dtype=np.uint8) for i in range(n)]


@pytest.fixture
def store():
    s = QuizStore()
    s.set_deck(make_deck(pictures(3, 0), pictures(3, 100), "test", seed=1))
    return s


def sources(deck):
    return {it.id: it.source for it in deck.items}


def test_deck_holds_every_picture_once_with_its_source():
    deck = make_deck(pictures(3, 0), pictures(2, 100), "d", seed=0)
    assert len(deck.items) == 5 and sorted(it.id for it in deck.items) == list(range(5))
    real = sorted(int(it.image[0, 0]) for it in deck.items if it.source == "real")
    gen = sorted(int(it.image[0, 0]) for it in deck.items if it.source == "generated")
    assert real == [0, 1, 2] and gen == [100, 101]


def test_deck_needs_both_sources_and_a_sane_size():
    with pytest.raises(ValueError, match="needs real and generated pictures, got 0 real and 2 generated"):
        make_deck([], pictures(2, 0), "d")
    with pytest.raises(ValueError, match=f"at most {MAX_ITEMS} pictures"):
        make_deck(pictures(MAX_ITEMS, 0), pictures(1, 0), "d")


def test_each_participant_has_an_own_repeatable_order(store):
    deck = store.deck
    a1, a2, b = deck.order_for("alice"), deck.order_for("alice"), deck.order_for("bob")
    assert a1 == a2 and sorted(a1) == sorted(b) == list(range(6))
    others = [deck.order_for(f"p{i}") for i in range(20)]
    assert any(o != a1 for o in others)  # shuffled, not one fixed order for all


def test_next_item_walks_the_participants_order_and_ends(store):
    deck = store.deck
    order = deck.order_for("alice")
    seen = []
    for k in range(6):
        item, done, total = store.next_item("alice", deck.id)
        assert (done, total) == (k, 6)
        seen.append(item.id)
        store.vote("alice", deck.id, item.id, "real", 3)
    assert seen == order
    assert store.next_item("alice", deck.id) == (None, 6, 6)
    assert store.next_item("bob", deck.id)[1:] == (0, 6)  # bob's progress is his own


def test_tallies_count_exactly(store):
    deck = store.deck
    src = sources(deck)
    gen = [i for i, s in src.items() if s == "generated"]
    real = [i for i, s in src.items() if s == "real"]
    store.vote("a", deck.id, gen[0], "real", 5)        # fooled
    store.vote("b", deck.id, gen[0], "generated", 1)   # not fooled
    store.vote("a", deck.id, gen[1], "real", 4)        # fooled
    store.vote("a", deck.id, real[0], "real", 4)       # right
    store.vote("b", deck.id, real[0], "generated", 2)  # wrong
    t = store.tallies()
    assert t["participants"] == 2 and t["votes"] == 5
    assert t["fooled_rate"] == pytest.approx(2 / 3)
    assert t["real_recognised"] == pytest.approx(1 / 2)
    assert t["accuracy"] == pytest.approx(2 / 5)
    assert t["mean_rating_generated"] == pytest.approx((5 + 1 + 4) / 3)
    assert t["mean_rating_real"] == pytest.approx(3.0)
    row = next(r for r in t["items"] if r["item"] == gen[0])
    assert row == {"item": gen[0], "source": "generated", "votes": 2, "said_real": 1, "said_generated": 1,
                   "correct": 1, "mean_rating": 3.0}
    untouched = next(r for r in t["items"] if r["item"] == real[1])
    assert untouched["votes"] == 0 and untouched["mean_rating"] is None


def test_a_second_vote_replaces_the_first(store):
    deck = store.deck
    store.vote("a", deck.id, 0, "real", 1)
    store.vote("a", deck.id, 0, "generated", 5)
    t = store.tallies()
    assert t["votes"] == 1 and t["items"][0]["said_generated"] == 1 and t["items"][0]["mean_rating"] == 5


def test_bad_votes_say_what_is_allowed(store):
    deck = store.deck
    with pytest.raises(ValueError, match=r"vote must be one of \('real', 'generated'\), got 'fake'"):
        store.vote("a", deck.id, 0, "fake", 3)
    with pytest.raises(ValueError, match="rating must be an integer from 1 to 5, got 6"):
        store.vote("a", deck.id, 0, "real", 6)
    with pytest.raises(ValueError, match="item must be between 0 and 5, got 9"):
        store.vote("a", deck.id, 9, "real", 3)
    with pytest.raises(ValueError, match="no longer active"):
        store.vote("a", "old-deck", 0, "real", 3)


def test_a_new_deck_drops_old_votes(store):
    store.vote("a", store.deck.id, 0, "real", 3)
    store.set_deck(make_deck(pictures(2, 0), pictures(2, 50), "next"))
    assert store.tallies()["votes"] == 0 and store.tallies()["name"] == "next"


def test_votes_from_many_threads_all_count(store):
    deck = store.deck

    def participant(k):
        for item in range(6):
            store.vote(f"p{k}", deck.id, item, "real" if (k + item) % 2 else "generated", 1 + item % 5)

    threads = [threading.Thread(target=participant, args=(k,)) for k in range(16)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    t = store.tallies()
    assert t["participants"] == 16 and t["votes"] == 96
    assert all(r["votes"] == 16 and r["said_real"] == 8 for r in t["items"])


def test_csv_has_one_row_per_vote_with_the_truth(store, tmp_path):
    deck = store.deck
    src = sources(deck)
    store.vote("a", deck.id, 0, "real", 2)
    store.vote("b", deck.id, 1, "generated", 4)
    path = store.export_csv(tmp_path)
    rows = list(csv.DictReader(path.open()))
    assert [r["participant"] for r in rows] == ["a", "b"]
    assert rows[0]["source"] == src[0] and rows[0]["correct"] == str(int(src[0] == "real"))
    assert rows[1]["rating"] == "4" and rows[1]["deck_name"] == "test"


def test_export_without_a_quiz_is_a_clear_error(tmp_path):
    with pytest.raises(ValueError, match="no quiz has been started yet"):
        QuizStore().export_csv(tmp_path)
    assert QuizStore().tallies() == {"deck": None, "participants": 0, "votes": 0, "items": []}
