"""The Reverse tab's views of a frame: the 2-D field, the picture or figure, the caption and its progress
line, and the outputs a view sends (a mixin of `ReverseHandlers`, which supplies `ctx`)."""
from __future__ import annotations

import gradio as gr
import numpy as np
import torch

from core.forward import model_predictions

from .. import animation
from ..costs import computing_left, say_seconds
from ..widgets import DataView
from . import reverse_text as text
from .reverse_session import ReverseSession

FIELD_GRID = 17            # arrows per side of the 2-D field
FIELD_LIM = 3.2
TRAIL_SPAN = 0.12          # a trail covers the last 12% of T


class ReverseViews:
    """How a session's frame k is shown: picture, caption, the outputs of a view."""

    def field(self, session: ReverseSession, t: int):
        """The model's eps on a grid of 2-D points at timestep t: (points, eps, spacing); cached per t."""
        t = max(1, int(t))  # t = 0 is the clean data, where the net is not defined: show t = 1
        if t not in session.fields:
            axis = np.linspace(-FIELD_LIM, FIELD_LIM, FIELD_GRID, dtype=np.float32)
            pts = np.stack(np.meshgrid(axis, axis), axis=-1).reshape(-1, 2)
            x = torch.from_numpy(pts).to(self.ctx.device)
            with torch.no_grad():
                _, eps = model_predictions(session.model, session.schedule, x, t, session.prediction)
            if len(session.fields) > 256:
                session.fields.clear()
            session.fields[t] = (pts, eps.float().cpu().numpy(), float(axis[1] - axis[0]))
        return session.fields[t]

    def _points_parts(self, session: ReverseSession, k: int):
        traj = session.traj
        frame = traj.frame(k)
        span = max(1, int(TRAIL_SPAN * session.schedule.T))
        trails = [traj.lane_history(lane, k, span) for lane in range(len(traj.lanes))]
        fields = [self.field(session, s.t) for s in frame]
        return frame, trails, fields

    def picture(self, session: ReverseSession, k: int):
        """Frame k as shown live: an RGB array for images (on the page's ground), a plotly Figure for
        points and signals (the page's theme styles those itself)."""
        traj = session.traj
        if traj.kind == "image":
            return animation.image_frame(traj.frame(k), traj.lanes, dark=session.dark)
        if traj.kind == "points":
            frame, trails, fields = self._points_parts(session, k)
            return animation.points_figure(frame, traj.lanes, trails, fields, session.reference)
        return animation.signal_figure(traj.frame(k), traj.lanes)

    def raster(self, session: ReverseSession, k: int, themed: bool = False) -> np.ndarray:
        """Frame k as an RGB array, whatever the data kind: light, as exported, or with `themed` image
        frames on the page's ground (chart frames are light: the page inverts them in its dark theme)."""
        traj = session.traj
        if traj.kind == "image":
            return animation.image_frame(traj.frame(k), traj.lanes, dark=themed and session.dark)
        if traj.kind == "points":
            frame, trails, fields = self._points_parts(session, k)
            return animation.points_raster(frame, traj.lanes, trails, fields, session.reference)
        return animation.signal_raster(traj.frame(k), traj.lanes)

    def caption(self, session: ReverseSession, k: int, note: str | None = None, playing: bool = False) -> str:
        traj = session.traj
        lines = []
        for lane, s in zip(traj.lanes, traj.frame(k)):
            ab = float(session.schedule.alpha_bar[s.t])
            if playing:  # plain text: typesetting the maths on every frame was a large part of the browser's work
                where = "**done**: the sample x₀" if s.done else f"step **{s.i + 1}** of {s.n}, t = {s.t}"
                lines.append(f"{animation.lane_title(lane, s).split(' · ')[0]}: {where}, ᾱ_t = {ab:.3g}")
                continue
            where = "**done**: the sample $x_0$" if s.done else f"step **{s.i + 1}** of {s.n}, $t = {s.t}$"
            lines.append(f"{animation.lane_title(lane, s).split(' · ')[0]}: {where}, "
                         f"$\\bar\\alpha_t = {text.tex_number(ab)}$")
        lines.append(self.progress(session, note, playing))
        return "  \n".join(lines)

    def progress(self, session: ReverseSession, note: str | None = None, playing: bool = False) -> str:
        traj = session.traj
        if session.computing:
            if not playing and not session.played and session.cursor == 0:
                # a run a link or a lesson stop set up on its first frame: nothing computed yet but the
                # noise it starts from, so say what Play will do and how long it takes
                cost = f", about {say_seconds(session.estimate)}" if session.estimate >= 2 else ""
                return (f"Ready: press Play (or Space). {session.total - 1} steps, computed live{cost}."
                        + (f" {note}" if note else ""))
            state = "computing…" if playing else "paused"
        elif playing:  # a run computed before, played again
            state = "replaying"
        else:
            state = "complete" if traj.complete else "stopped"
        kept = "" if traj.stride == 1 else f" (recording every {traj.stride}th to bound memory)"
        if session.recorded:
            state = ("replaying" if playing else "complete" if session.cursor >= len(traj) - 1
                     else "ready: press Play (or Space)" if session.cursor == 0 else "paused")
            # a run of n steps has frames 0 to n, as the slider counts them: the noise it starts from (0),
            # then one after each step
            # the steps only where they differ from the frames (a long run recorded every k-th): the line
            # must keep to one line under the picture in the presenter view
            steps = "" if traj.ticks == len(traj) else f" · {traj.ticks - 1} steps{kept}"
            line = (f"Frame {session.cursor} of {len(traj) - 1}{steps} · recorded earlier, "
                    f"replayed without computing · {state}.")
            return line + (f" {note}" if note else "")
        line = (f"Frame {session.cursor} of {len(traj) - 1} recorded · {max(traj.ticks - 1, 0)} of "
                f"{session.total - 1} steps computed live{kept} · {state}" + ("" if state.endswith("…") else "."))
        if session.computing:
            left = computing_left(session.estimate, session.total, traj.ticks, session.timed_s, session.timed)
            if max(left, session.estimate) >= 2:
                line += f" About {say_seconds(left)} of computing left."
        return line + (f" {note}" if note else "")

    def status(self, session, note: str) -> str:
        if not isinstance(session, ReverseSession) or session.traj is None or not len(session.traj):
            return note
        return self.caption(session, session.cursor, note)

    def view(self, session: ReverseSession, k: int, note: str | None = None, playing: bool = False,
             slider: bool = True, picture: bool = True, streaming: bool = False, words: bool = True,
             figure: bool = True) -> tuple:
        """The outputs (image, plot, caption, frame slider) for frame k; picture=False leaves the shown one.

        While playing, 2-D and signal frames are drawn on the server as JPEG pictures like image
        frames: a plotly figure with hundreds of points, trails and arrows costs the browser a
        full redraw per frame and froze it at a few frames a second. At rest (paused, stopped,
        complete, scrubbed, stepped) the same frame is the interactive figure, for hover and zoom,
        except where the page's Play ends (`figure`=False).

        streaming: a later frame of a play whose first view set the components up: only values go
        (the picture, and with `words` the caption and the slider's position and length).
        Gradio's page applies each key of an update on its own, and one without a value (visible,
        interactive, maximum) makes it deep-copy all of that component's properties: a hidden
        figure's hundreds of points copied on every frame were most of the browser's work. So the
        first playing view also empties the hidden figure (a view at rest sends a new one; after the
        page's Play, the page asks for it).

        figure=False: a 2-D or signal frame at rest is the picture, as it played (the closing view of
        the page's Play, whose first view showed the picture; the figure is drawn when the page asks
        for it: `ReverseHandlers.figure`).
        """
        kind = session.traj.kind
        if not picture:
            image, plot = gr.skip(), gr.skip()
        elif kind == "image":
            image, plot = DataView.fast(kind, self.picture(session, k))
        elif playing and streaming:
            image, plot = self.raster(session, k), gr.skip()
        elif playing:
            image, plot = gr.update(value=self.raster(session, k), visible=True), gr.update(value=None, visible=False)
        elif not figure:  # a play's closing view: its first view showed the picture and emptied the figure
            image, plot = DataView.show("image", self.raster(session, k, themed=True))
        else:
            image, plot = DataView.show(kind, self.picture(session, k))
        if not words:
            return image, plot, gr.skip(), gr.skip()
        top = max(len(session.traj) - 1, 0)
        if not slider:
            scrub = gr.skip()
        elif streaming:  # already locked by the first view; the length grows while computing
            scrub = gr.update(maximum=max(top, 1), value=k)
        else:
            scrub = gr.update(maximum=max(top, 1), value=k, interactive=not playing)
        return image, plot, self.caption(session, k, note, playing), scrub

    def set_theme(self, mode, session):
        """The page's theme, 'dark' or 'light': image frames are drawn on its ground from now on, and the
        frame shown is drawn again (the page asks when the picture's ground does not match its theme)."""
        if not isinstance(session, ReverseSession):
            return gr.skip()
        session.dark = str(mode).strip().lower() == "dark"
        traj = session.traj
        if traj is None or not len(traj) or traj.kind != "image" or session.token is not None:
            return gr.skip()  # nothing shown, a chart (the page styles it), or a play (its next frames follow)
        return self.picture(session, session.cursor)
