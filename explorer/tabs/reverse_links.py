"""The Reverse tab's part of a link, lesson stop or page opening: the controls and the frame a link names
(a mixin of `ReverseHandlers`, which supplies loading, settings and the run)."""
from __future__ import annotations

import gradio as gr

from core.samplers import SAMPLER_LABELS, SAMPLERS

from ..lecture import OPENING
from ..widgets import DataView
from .checkpoint_picker import checkpoint_label, kind_of
from .reverse_session import MAX_SAMPLES, ReverseSession, Spec, default_samples, default_steps


class ReverseLinks:
    """Restoring the tab from a link's values, and its opening view."""

    LINK_KEYS = ("checkpoint", "sampler", "steps", "eta", "n", "frame", "seed", "compare", "sampler_b", "steps_b",
                 "spacing")
    N_RESTORED = 20  # the restorer's outputs (see `restore`)

    def restore(self, values: dict, problems: list[str]) -> tuple:
        """The Reverse tab's part of restoring a link (see explorer.lecture.url_state).

        Outputs: checkpoint, sampler, steps, eta, seed, samples, facts, second steps, shown kind,
        explanation, compare, the second sampler's group, the second sampler, its eta, the spacing, then the view
        (image, plot, caption, frame slider) and the session. With a frame in the link the trajectory
        is computed up to it, so the link shows the same picture.
        """
        skip = (gr.skip(),) * self.N_RESTORED
        if values.get("tab") != "reverse" or not any(k in values for k in self.LINK_KEYS):
            # only when the page opens: a lesson stop or bundle of another tab must not replace a run
            # the lecturer has on this tab (or one still playing)
            return self.opening() if values.get(OPENING) else skip
        got = self.link_setting(values, problems)
        if got is None:
            return skip
        path, kind, T = got["path"], got["kind"], got["T"]
        sampler, steps, eta, n, seed = got["sampler"], got["steps"], got["eta"], got["n"], got["seed"]
        compare, sampler_b, steps_b = got["compare"], got["sampler_b"], got["steps_b"]
        controls = (gr.update(value=path), gr.update(value=sampler), gr.update(maximum=T, value=steps),
                    gr.update(value=eta, visible=sampler == "ddim"), gr.update(value=seed),
                    gr.update(maximum=MAX_SAMPLES[kind], value=n), self.info(path),
                    gr.update(maximum=T, value=steps_b), kind,
                    self.explanation(path, sampler, compare, sampler_b),
                    gr.update(value=compare), gr.update(visible=compare), gr.update(value=sampler_b),
                    gr.update(value=0.0, visible=sampler_b == "ddim"), gr.update(value=got["spacing"]))
        frame = values.get("frame")
        spec, loaded = self.link_spec(got)
        if frame is None:  # the first frame: x_T and one model call (nothing at all when recorded), so a link or
            frame = 0      # a lesson stop opens on the noise the run starts from, not on an empty box
        session = ReverseSession()
        self._start(session, spec, loaded)
        while len(session.traj) <= frame and self._advance(session):
            pass
        if frame >= len(session.traj):
            problems.append(f"the link's frame={frame} is past the last frame of this run ({len(session.traj) - 1})")
        session.cursor = min(frame, len(session.traj) - 1)
        return (*controls, *self._shown(session), session)

    def link_spec(self, setting: dict) -> tuple[Spec, tuple]:
        """(Spec, loaded) of a setting from `link_setting`: the run the link's Play plays."""
        s = setting
        return self.spec(s["path"], s["sampler"], s["steps"], s["eta"], s["seed"], s["n"], s["compare"],
                         s["sampler_b"], s["steps_b"], 0.0, s["spacing"])

    def link_setting(self, values: dict, problems: list[str]) -> dict | None:
        """The checkpoint and sampler settings a link's (or a lesson stop's) values name, each value it leaves
        out at the tab's default and each it gets wrong at the default with a line in `problems`: {"path",
        "kind", "T", "sampler", "steps", "eta", "n", "seed", "compare", "sampler_b", "steps_b", "spacing"}.
        None when there is no checkpoint at all."""
        entries = self.checkpoints()
        path = self.default_checkpoint()
        name = values.get("checkpoint")
        if name is not None:
            found = [e["path"] for e in entries if name in (e["name"], checkpoint_label(e))]
            if found:
                path = found[0]
            else:
                names = ", ".join(sorted({e["name"] for e in entries})) or "none"
                problems.append(f"there is no checkpoint {name!r} here (checkpoints: {names})")
        if path is None:
            return None
        _, _, meta, schedule = self.load(path)
        kind, T = kind_of(self.entry(path)), schedule.T
        sampler = self._link_sampler(values, "sampler", "ddim", problems)
        steps = values.get("steps", default_steps(sampler, T))
        if steps > T:
            problems.append(f"the link's steps={steps} is more than this model's T={T}")
            steps = default_steps(sampler, T)
        eta = values.get("eta", 0.0) if sampler == "ddim" else 0.0
        n = values.get("n", default_samples(kind, meta["sample_shape"]))
        if n > MAX_SAMPLES[kind]:
            problems.append(f"the link's n={n} is more than {MAX_SAMPLES[kind]}, the most for {kind} models")
            n = default_samples(kind, meta["sample_shape"])
        seed = values.get("seed", 0)
        compare = values.get("compare", False)
        sampler_b = self._link_sampler(values, "sampler_b", "ddpm", problems)
        steps_b = values.get("steps_b", default_steps(sampler_b, T))
        if steps_b > T:
            problems.append(f"the link's steps_b={steps_b} is more than this model's T={T}")
            steps_b = default_steps(sampler_b, T)
        return {"path": path, "kind": kind, "T": T, "sampler": sampler, "steps": steps, "eta": eta, "n": n,
                "seed": seed, "compare": compare, "sampler_b": sampler_b, "steps_b": steps_b,
                "spacing": values.get("spacing", "linear")}

    @staticmethod
    def _link_sampler(values: dict, key: str, default: str, problems: list[str]) -> str:
        """A link's sampler (by its name or its label), or `default` with a message."""
        given = values.get(key, default)
        sampler = {**{k: k for k in SAMPLERS}, **{v: k for k, v in SAMPLER_LABELS.items()}}.get(given)
        if sampler is None:
            problems.append(f"the link's {key}={given!r} is not one of {', '.join(SAMPLERS)}")
            sampler = default
        return sampler

    def default_spec(self, path: str) -> tuple[Spec, tuple]:
        """(Spec, loaded) of the tab's default setting for a checkpoint: what it plays before anything
        is changed (DDIM with its default steps, eta 0, seed 0, the kind's default number of samples)."""
        _, _, meta, schedule = self.load(path)
        kind = kind_of(self.entry(path))
        return self.spec(path, "ddim", default_steps("ddim", schedule.T), 0.0, 0,
                         default_samples(kind, meta["sample_shape"]))

    def opening(self) -> tuple:
        """The restorer's outputs for a page that names nothing of this tab: the controls as built and,
        when the default run was recorded (shipped beside each shipped model), its first frame, so
        the tab opens on a picture of the noise it starts from rather than an empty box."""
        skip = (gr.skip(),) * self.N_RESTORED
        path = self.default_checkpoint()
        if path is None:
            return skip
        spec, loaded = self.default_spec(path)
        if self.recordings.get(spec) is None:
            return skip
        session = ReverseSession()
        self._start(session, spec, loaded)
        return (*(gr.skip(),) * (self.N_RESTORED - 5), *self._shown(session), session)

    def first_view(self, checkpoint, sampler, steps, eta, seed, n, compare, sampler_b, steps_b, eta_b, session,
                   spacing="linear") -> tuple:
        """A checkpoint chosen in the list opens on its first frame, as a link to it does: the run Play will
        play is set up from the tab's settings (replayed where it was recorded, as each shipped model's
        default run is; else x_T and one model call), so the tab shows the noise that run starts from and
        says what Play will do, not an empty box under the caption of the checkpoint before.

        Outputs: image, plot, caption, frame slider. Nothing changes while the session has a run of this
        checkpoint (the one on screen stays) or while one plays."""
        if not checkpoint or not isinstance(session, ReverseSession):
            return (gr.skip(),) * 4
        spec, loaded = self.spec(checkpoint, sampler, steps, eta, seed, n, compare, sampler_b, steps_b, eta_b,
                                 spacing)
        with session.lock:  # a Play clicked meanwhile either finds this run set up or has begun its own
            if session.token is not None or (session.spec is not None and session.spec.checkpoint == checkpoint):
                return (gr.skip(),) * 4
            self._start(session, spec, loaded)
            while not len(session.traj) and self._advance(session):
                pass
            return self._shown(session)

    def _shown(self, session: ReverseSession) -> tuple:
        """(image, plot, caption, frame slider) of the session's frame at its cursor, the view's
        component for the data kind made visible."""
        image, plot, caption, scrub = self.view(session, session.cursor)
        if session.spec.kind == "image":
            image, plot = DataView.show("image", image)
        return image, plot, caption, scrub
