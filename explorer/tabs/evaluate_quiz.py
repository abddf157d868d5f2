"""The Evaluate tab's human evaluation: a blind real-or-generated quiz the class answers on their phones,
with a realism rating, shared tallies and the teacher's reveal (a mixin of `EvaluateHandlers`)."""
from __future__ import annotations

import uuid

import gradio as gr
import torch

from core.checkpoint import load_config
from core.data import checkpoint_data, load_dataset
from core.sample import draw

from .. import render
from ..quiz import STORE, make_deck
from .checkpoint_picker import kind_of

QUIZ_MAX_PER_SOURCE = 50


class EvaluateQuiz:
    """The quiz's events: a new deck, the next picture, an answer, the reveal, the results, a CSV."""

    def quiz_new(self, path, per_source, seed=0):
        """A new shared quiz: `per_source` real and as many generated images, shuffled. Outputs: quiz status."""
        e = self.entry(path)
        if kind_of(e) != "image":
            raise gr.Error("The quiz shows pictures: choose a checkpoint of an image model (e.g. digits).")
        if per_source is None or not float(per_source).is_integer() or not 2 <= int(per_source) <= QUIZ_MAX_PER_SOURCE:
            raise gr.Error(f"pictures per source must be between 2 and {QUIZ_MAX_PER_SOURCE}, got {per_source!r}")
        k, seed = int(per_source), int(seed or 0)
        config, meta = load_config(path)
        try:  # the real pictures first: a checkpoint whose data is gone or elsewhere says so
            d = checkpoint_data(config.data, self.ctx.settings.runs_dir)
            data = load_dataset(d.name, **dict(d.params))
        except ValueError as err:
            raise gr.Error(str(err)) from None
        gen, _ = draw(path, sampler="ddim", steps=50, n=k, seed=seed, device=str(self.ctx.device))
        pick = torch.randperm(len(data), generator=torch.Generator().manual_seed(seed + 1))[:k]
        real = data.x[pick]
        deck = make_deck([render.image(x, min_size=256) for x in real], [render.image(x, min_size=256) for x in gen],
                         name=f"{e['name']} ({meta.get('dataset', config.data.name)})", seed=seed)
        STORE.set_deck(deck)
        return self.quiz_status()

    @staticmethod
    def quiz_status() -> str:
        deck = STORE.deck
        if deck is None:
            return ("No quiz yet: press **New quiz from this checkpoint** (an image model: digits, shapes "
                    "or your own), then **Take the quiz** here or let the class join (**Join**, or J).")
        t = STORE.tallies()
        return (f"Quiz **{deck.name}**: {len(deck.items)} pictures, half real, half generated. "
                f"{t['participants']} participant(s), {t['votes']} answer(s) so far.")

    @staticmethod
    def _participant(session: dict | None) -> dict:
        session = dict(session or {})
        session.setdefault("id", uuid.uuid4().hex[:10])
        return session

    def quiz_next(self, session):
        """Show this participant their next unanswered picture.
        Outputs: session, image, progress text, vote buttons' group visibility."""
        session = self._participant(session)
        deck = STORE.deck
        if deck is None:
            return session, None, "No quiz is running yet.", gr.update(visible=False)
        session["deck"] = deck.id
        item, done, total = STORE.next_item(session["id"], deck.id)
        if item is None:
            session["item"] = None
            return session, None, f"**Done**: you answered all {total} pictures. See the results below.", \
                gr.update(visible=False)
        session["item"] = item.id
        return session, item.image, f"Picture **{done + 1} of {total}**: real or generated?", gr.update(visible=True)

    def quiz_vote(self, session, vote, rating):
        """Record this participant's answer on the picture in view, then show the next.
        Outputs: session, image, progress text, vote group, results."""
        session = self._participant(session)
        if session.get("item") is None or session.get("deck") is None:
            raise gr.Error("Press **Take the quiz** first.")
        try:
            STORE.vote(session["id"], session["deck"], int(session["item"]), vote, rating)
        except ValueError as err:
            raise gr.Error(str(err)) from None
        return (*self.quiz_next(session), *self.quiz_results())

    @staticmethod
    def quiz_reveal(on: bool = True):
        """The teacher reveals (or hides again) which answered pictures were real. Outputs: as quiz_results."""
        STORE.reveal(bool(on))
        return EvaluateQuiz.quiz_results()

    @staticmethod
    def quiz_results():
        """The tallies over every participant. Outputs: summary (markdown), per-picture table, gallery.

        A picture's true source shows only once the teacher has revealed the answers, and only for
        pictures someone has answered: a projected results table must not give away the rest.
        """
        t = STORE.tallies()
        if t["deck"] is None:
            return "No quiz yet.", None, None
        deck = STORE.deck

        def pct(v):
            return "–" if v is None else f"{v:.0%}"

        def num(v):
            return "–" if v is None else f"{v:.2f}"

        summary = (f"**{t['participants']}** participant(s), **{t['votes']}** answers. "
                   f"Generated pictures fooled people **{pct(t['fooled_rate'])}** of the time "
                   f"(50% = indistinguishable from real; real ones were called real {pct(t['real_recognised'])}). "
                   f"Overall accuracy {pct(t['accuracy'])}. Mean realism: generated {num(t['mean_rating_generated'])}, "
                   f"real {num(t['mean_rating_real'])} (1-5).")
        revealed = STORE.revealed

        def source(r):
            if not r["votes"]:
                return "not answered"
            return r["source"] if revealed else "hidden"

        def tag(r):
            return ("R" if r["source"] == "real" else "G") if revealed and r["votes"] else "?"

        rows = [[r["item"], source(r), r["votes"], r["said_real"], r["said_generated"],
                 None if r["mean_rating"] is None else round(r["mean_rating"], 2)] for r in t["items"]]
        gallery = [(deck.items[r["item"]].image, f"{tag(r)}{r['item']} {r['said_real']}/{r['votes']}")
                   for r in t["items"]]
        if not revealed:
            summary += " Which pictures were real stays hidden until **Reveal the answers**."
        return summary, rows, gallery

    @staticmethod
    def quiz_export():
        try:
            return str(STORE.export_csv())
        except ValueError as err:
            raise gr.Error(str(err)) from None
