"""The Reverse tab's handlers: run samplers on one clock, play, pause, step and scrub, export, sample.

`ReverseHandlers(ctx)` holds every event of the tab (tests and gradio_client call them; `reverse.py`
wires them to widgets). The settings and a session's state are in `reverse_session.py`, the checkpoint in
view and the controls fitted to it in `reverse_models.py`, the views of a frame in `reverse_views.py`, a
link's restoring in `reverse_links.py`. All diffusion math is in `core`.
"""
from __future__ import annotations

import functools
import json
import math
import time
from pathlib import Path

import gradio as gr
import torch

from core.checkpoint import sampling_clip
from core.samplers import ANCESTRAL, SAMPLER_LABELS, SAMPLERS, sampler_name, sampler_options
from core.schedules import SPACINGS

from .. import animation, tempfiles
from ..costs import COSTS, LIMIT_S, say_seconds
from ..feed import FEEDS, Feed, armed_marker, figure_later, jpeg
from ..feed import marker as feed_marker
from ..pacer import FrameSlots
from ..recordings import Recordings
from ..trajectory import Clock, Lane, ReuseLastCall, Trajectory, snapshot
from ..widgets import DataView
from .checkpoint_picker import RANK_KIND, CheckpointPicker
from .reverse_links import ReverseLinks
from .reverse_models import ReverseModels
from .reverse_session import (AUTO_SECONDS, MAX_SAMPLES, SEED_MAX, ReverseSession, Spec, number, reference_points,
                              speed_of, whole)
from .reverse_views import ReverseViews

# Frames actually sent while playing: a browser shows ~30 images/s; plotly redraws are slower.
MAX_FPS = {"image": 30.0, "points": 12.0, "signal": 15.0}
# The caption and the frame slider follow at most this often while playing (the first and the closing
# view always carry them): each update of either is page work in the browser, and a caption that
# changes 12 times a second cannot be read anyway.
CAPTION_FPS = 4.0
# The page's player (explorer/feed.py) is sent a frame only when it has shown the previous one, so it
# sets the pace itself where it is slower than this. 2-D and signal frames are whole charts: each
# one costs the browser's main thread about 19 ms to decode and paint (headless chromium, 2-core
# CPU), so at 25 a second it was 48% busy; at 12 it stays free for clicks and keys.
LIVE_FPS = {"image": 30.0, "points": 12.0, "signal": 15.0}
EXPORT_MAX_FRAMES = {"gif": 90, "mp4": 360}
EXPORT_FPS = {"gif": 12, "mp4": 24}
SECOND_LANE_SALT = 1_000_003  # the second sampler's noise stream: seed + salt (its x_T is the first's)


class ReverseHandlers(CheckpointPicker, ReverseModels, ReverseViews, ReverseLinks):
    """Every event of the tab, bound to the app context (for checkpoints and the device).

    `recordings` keeps complete trajectories for every session of the app (and finds the ones shipped
    beside checkpoints): a setting already computed is replayed, not computed again.
    """

    def __init__(self, ctx, recordings: Recordings | None = None):
        super().__init__(ctx)
        self.recordings = recordings if recordings is not None else Recordings()

    # validation ----------------------------------------------------------------------------

    def spec(self, path, sampler, steps, eta, seed, n, compare=False, sampler_b="ddim", steps_b=50,
             eta_b=0.0, spacing="linear") -> tuple[Spec, tuple]:
        """Check every setting against the checkpoint; returns (Spec, (model, config, meta, schedule)).
        `spacing` (the timesteps the samplers visit) applies to both lanes."""
        loaded = self.load(path)
        _, config, meta, schedule = loaded
        kind = RANK_KIND.get(len(meta["sample_shape"]), "image")
        spacing = "linear" if spacing is None else spacing
        if spacing not in SPACINGS:
            raise gr.Error(f"unknown timestep spacing {spacing!r}; choose one of {', '.join(SPACINGS)}")
        lanes = [self._lane(sampler, steps, eta, schedule.T, spacing=spacing)]
        if compare:
            lanes.append(self._lane(sampler_b, steps_b, eta_b, schedule.T, "second sampler", spacing))
        n = whole("number of samples", n, 1, MAX_SAMPLES[kind])
        seed = whole("seed", seed, 0, SEED_MAX)
        weights = Path(path) / "model.safetensors"
        mtime = weights.stat().st_mtime_ns if weights.exists() else 0
        return Spec(str(path), mtime, kind, tuple(lanes), seed, n), loaded

    @staticmethod
    def _lane(sampler, steps, eta, T: int, which: str = "sampler", spacing: str = "linear") -> Lane:
        if sampler not in SAMPLERS:
            raise gr.Error(f"unknown {which} {sampler!r}; choose one of {', '.join(SAMPLERS)}")
        steps = whole(f"steps ({which})", steps, 1, T)
        eta = number(f"eta ({which})", eta if eta is not None else 0.0, 0.0, 1.0) if sampler == "ddim" else None
        return Lane(sampler, SAMPLER_LABELS.get(sampler, sampler), steps, eta, spacing)

    # running -------------------------------------------------------------------------------

    def _iterators(self, spec: Spec, loaded):
        """One sampler iterator per lane, all from the same x_T drawn from the seed."""
        model, config, meta, schedule = loaded
        shape = (spec.n, *meta["sample_shape"])
        g = torch.Generator().manual_seed(spec.seed)
        x_T = torch.randn(shape, generator=g)  # drawn once; every lane starts here
        # the x0 clip the checkpoint was trained for (images [-1, 1]; 2-D toys and signals their data's
        # range), as core.sample and core.evaluate use: without it DDIM's first steps from pure noise
        # throw some points far off (spiral's cosine schedule: nearly all of them)
        clip = sampling_clip(meta)
        if len(spec.lanes) > 1:
            model = ReuseLastCall(model)  # the lanes' first steps share one forward pass
        its, timesteps = [], []
        for k, lane in enumerate(spec.lanes):
            gen = g if k == 0 else torch.Generator().manual_seed(spec.seed + SECOND_LANE_SALT * k)
            opts = sampler_options(lane.sampler, lane.eta, lane.spacing)
            its.append(SAMPLERS[lane.sampler](model, schedule, shape, steps=lane.steps, generator=gen,
                                              device=self.ctx.device, prediction=config.diffusion.prediction,
                                              x_T=x_T, clip=clip, **opts))
            timesteps.append(schedule.timesteps(lane.steps, lane.spacing).tolist())
        return its, timesteps

    def _start(self, session: ReverseSession, spec: Spec, loaded) -> None:
        """Set the session up for a run of `spec`: replayed where it was recorded before, else computed live."""
        model, config, meta, schedule = loaded
        recorded = self.recordings.get(spec)
        if recorded is not None:
            session.spec, session.clock, session.traj = spec, None, recorded
        else:
            its, timesteps = self._iterators(spec, loaded)
            session.spec, session.clock = spec, Clock(its, timesteps)
            session.traj = Trajectory(spec.kind, spec.lanes)
        session.recorded = recorded is not None
        session.played = False
        session.cursor = 0
        session.model, session.schedule, session.prediction = model, schedule, config.diffusion.prediction
        session.fields = {}
        session.reference = None
        if spec.kind == "points":
            session.reference = reference_points(config.data.name, json.dumps(config.data.params, sort_keys=True))
        session.total = session.clock.total if session.clock is not None else recorded.ticks
        session.estimate = 0.0 if recorded is not None else self.estimate(spec, loaded)[0]
        session.timed_s, session.timed = 0.0, 0

    def _advance(self, session: ReverseSession) -> bool:
        """Compute clock ticks until one is recorded as a new frame; False when the run is complete."""
        with session.lock:  # one thread at a time may drive the samplers (Play, step, export)
            clock, traj = session.clock, session.traj
            while clock is not None and not clock.finished:
                began = time.perf_counter()
                tick = clock.tick()
                session.timed_s += time.perf_counter() - began
                session.timed += 1
                if tick is None:
                    break
                if traj.observe(tick):
                    if traj.complete:
                        self.recordings.put(session.spec, traj)
                    return True
            return False

    def _begin(self, settings: tuple, speed, session) -> tuple:
        """Set a Play up: (session, spec, rate, token, fresh, T); `fresh` when the run starts now."""
        session = session if isinstance(session, ReverseSession) else ReverseSession()
        spec, loaded = self.spec(*settings)
        rate = speed_of(speed)
        token = object()
        with session.lock:
            session.token = token
            fresh = session.spec != spec or session.traj is None or (
                not session.computing and not session.traj.complete)  # a stopped run starts over
            if fresh:
                self._start(session, spec, loaded)
            elif session.traj.complete and session.cursor >= len(session.traj) - 1:
                session.cursor = 0  # replay from the start
            session.played = True
        if fresh:
            self._advance(session)  # the first step only: the first frame goes out at once
        if rate is None:
            rate = max(1.0, session.total / AUTO_SECONDS)
        return session, spec, rate, token, fresh, loaded[3].T

    def _paced(self, session: ReverseSession, rate: float, token, min_gap: float, ready=None):
        """Move the cursor through the run at `rate` clock ticks a second (replayed or computed).

        Yields (frame index, words) for each frame to show: at most one in each `min_gap` slot of the
        clock (`FrameSlots`: about 1 / min_gap a second even where steps come just faster than that) and,
        with `ready`, only while ready() says the viewer wants one; `words` at most CAPTION_FPS times
        a second. Ends when the run is complete, or Pause, Stop, a step or a new Play took over.
        The final frame is not yielded: the closing view (`_closing`) shows it, no sooner than the
        next free slot (a run that ends, not one that is paused or stopped).
        """
        words_gap = 1.0 / CAPTION_FPS
        t0 = last_words = time.perf_counter()
        slots = FrameSlots(min_gap)
        slots.take()  # the first view showed the frame before this one
        played = 0  # clock ticks shown since t0: the speed paces these, whether replayed or computed
        while session.token is token:
            traj = session.traj
            if traj is None:  # cleared: another checkpoint was chosen
                break
            if session.cursor < len(traj) - 1:          # replaying recorded frames
                session.cursor += 1
                played += traj.stride
            else:                                        # computing new ones
                before = traj.ticks
                if not self._advance(session):
                    break
                session.cursor = len(traj) - 1
                played += traj.ticks - before
            if rate != math.inf:
                wait = played / rate - (time.perf_counter() - t0)
                if wait > 0:
                    time.sleep(wait)
            if session.token is not token:
                break
            if session.cursor >= len(traj) - 1 and not session.computing:
                # the final frame: the closing view shows it, in a slot of its own too. A run computed
                # faster than the slots (DDIM 50 at top speed, about 0.15 s) sent its closing view just
                # after its last frame, which the page then never showed (3 of 5 frames painted)
                time.sleep(slots.until_free())
                break
            now = time.perf_counter()
            if slots.free() and (ready is None or ready()):
                slots.take()
                words = now - last_words >= words_gap
                if words:
                    last_words = now
                yield session.cursor, words

    def _closing(self, session: ReverseSession, spec: Spec, token, shown: int, figure: bool = True):
        """The view a play ends with, or None when a step, a scrub or a new Play took over.

        Pause and Stop answer outside the queue, so a frame this generator sent just before them can
        reach the browser after their reply: the generator closes with its own view (caption, slider
        free). Each frame goes out once, though: sending the same image again would make Gradio
        rewrite its cached file in place while the browser may still be reading it (a broken frame),
        so the picture comes only if the cursor moved since `shown`, the last one the page has from
        Gradio. A step, a scrub or a new Play that took over is queued after this generator's frames
        and shows its own view. 2-D and signal frames travel as pictures while playing; with `figure`
        the closing view swaps in the interactive figure (a different component, no cached file), so it
        always goes out. Without it (the page's Play) they end on a picture, as image frames do.
        """
        with session.lock:
            mine = session.token is token
            if mine:
                session.token = None
        again = shown != session.cursor or (figure and spec.kind != "image")
        if session.stopped is token:
            return self.view(session, session.cursor, note=self.STOPPED, picture=again, figure=figure)
        if mine or session.paused is token:  # complete or paused
            return self.view(session, session.cursor, picture=again, figure=figure)
        return None

    def play(self, checkpoint, sampler, steps, eta, seed, n, compare, sampler_b, steps_b, eta_b, speed,
             session: ReverseSession | None, spacing="linear"):
        """Stream frames as Gradio outputs while the trajectory is computed (or replay it): the API's Play.

        The page's own Play button uses `play_live`, which sends the frames outside Gradio's messages.
        """
        settings = (checkpoint, sampler, steps, eta, seed, n, compare, sampler_b, steps_b, eta_b, spacing)
        session, spec, rate, token, fresh, T = self._begin(settings, speed, session)
        yield self.view(session, session.cursor, playing=True)
        self._announce(session, spec, rate, fresh, T)
        shown = session.cursor
        for k, words in self._paced(session, rate, token, 1.0 / MAX_FPS[spec.kind]):
            shown = k
            yield self.view(session, k, playing=True, streaming=True, words=words)
        closing = self._closing(session, spec, token, shown)
        if closing is not None:
            yield closing

    def play_live(self, checkpoint, sampler, steps, eta, seed, n, compare, sampler_b, steps_b, eta_b, speed,
                  session: ReverseSession | None, spacing="linear"):
        """The page's Play: the first and the closing view go through Gradio, the frames between
        through a `Feed` that the page's player fetches (see explorer/feed.py). Outputs: the view
        (image, plot, caption, frame slider) and the feed marker. Settings that a checkpoint just chosen
        changes are taken as that choice sets them (`fit_to_checkpoint`).

        A 2-D or signal run ends on its last frame's picture, as it played, with a marker that says
        its interactive figure waits (`figure_later`): drawing that figure took the browser's main
        thread 0.2-0.3 s at the end of every play (benchmarks/reverse_2d_playback.py); the page asks
        for it (`figure`) when a pointer or the keyboard comes to the view."""
        steps, steps_b, n = self.fit_to_checkpoint(checkpoint, steps, steps_b, n)
        settings = (checkpoint, sampler, steps, eta, seed, n, compare, sampler_b, steps_b, eta_b, spacing)
        session, spec, rate, token, fresh, T = self._begin(settings, speed, session)
        feed = self._take_feed(session, fresh)
        # The frame Gradio's image gets. Where the armed feed sent it already, the page shows the same
        # picture, and its player asks for the next frame only once this view has landed.
        first = session.cursor
        try:
            yield *self.view(session, first, playing=True), feed_marker(feed)
            self._announce(session, spec, rate, fresh, T)
            for k, _ in self._paced(session, rate, token, 1.0 / LIVE_FPS[spec.kind], ready=lambda: feed.hungry):
                feed.publish(jpeg(self.raster(session, k, themed=True)), self.caption(session, k, playing=True), k,
                             len(session.traj))
        finally:
            FEEDS.close(feed)
        closing = self._closing(session, spec, token, first, figure=False)
        later = closing is not None and spec.kind != "image"
        yield *(closing if closing is not None else (gr.skip(),) * 4), figure_later() if later else feed_marker(None)

    def figure(self, session):
        """The interactive figure of the frame shown at rest, where a play ended on its picture (the
        page asks when a pointer or the keyboard comes to the view); nothing while a run plays, for
        image runs, or with no run. Outputs: the view's image and plot."""
        if not isinstance(session, ReverseSession):
            return gr.skip(), gr.skip()
        with session.lock:  # a Play that starts meanwhile sends its first view after this one
            traj = session.traj
            if session.token is not None or traj is None or not len(traj) or traj.kind == "image":
                return gr.skip(), gr.skip()
            return DataView.show(traj.kind, self.picture(session, session.cursor))

    # Play's first frame before Play's event arrives (armed feeds, see explorer/feed.py) -------

    def arm(self, session):
        """The marker of the session's armed feed, which the page's next Play click asks for Play's
        first frame while Play's own event goes through the queue ('' for a session with no run)."""
        if not isinstance(session, ReverseSession) or session.traj is None:
            return armed_marker(None)
        armed = session.armed
        if armed is None or armed.closed:
            armed = session.armed = FEEDS.open(functools.partial(self._first_frame, session),
                                               functools.partial(self._frame_picture, session))
        return armed_marker(armed)

    @staticmethod
    def _next_frame(session: ReverseSession) -> int | None:
        """The frame Play shows first when it goes on from the cursor without computing (None: it
        computes first, or starts over, as a stopped run does)."""
        traj = session.traj
        if traj is None or not len(traj) or (not traj.complete and not session.computing):
            return None
        if traj.complete and session.cursor >= len(traj) - 1:
            return 0  # Play replays a complete run from its start
        return session.cursor + 1 if session.cursor < len(traj) - 1 else None

    def _first_frame(self, session: ReverseSession, commit: bool = True):
        """The armed feed's starter: (JPEG, caption, index, frames) of the frame Play will show first,
        or None when it has to be computed, a run plays, or the session is busy (Play's own event).
        With `commit` the session moves to it: the page shows it from now on, whether or not Play's
        event follows; without, nothing changes (the page's look ahead)."""
        if not session.lock.acquire(blocking=False):
            return None
        try:
            k = self._next_frame(session) if session.token is None else None
            if k is None:
                return None
            cursor = session.cursor
            session.cursor = k  # the caption counts from the cursor
            try:
                return (jpeg(self.raster(session, k, themed=True)), self.caption(session, k, playing=True), k,
                        len(session.traj))
            finally:
                if not commit:
                    session.cursor = cursor
        finally:
            session.lock.release()

    def _frame_picture(self, session: ReverseSession, k: int):
        """The armed feed's viewer: (JPEG, caption, k, frames) of recorded frame k, the picture a scrub of
        the frame slider shows while it is dragged; nothing changes. None when there is no such frame or
        the session is busy (a Play's event, a step). The caption is '': the scrub's own view brings it."""
        if not session.lock.acquire(blocking=False):
            return None
        try:
            traj = session.traj
            if traj is None or not 0 <= k < len(traj) or session.token is not None:
                return None
            return jpeg(self.raster(session, k, themed=True)), "", k, len(traj)
        finally:
            session.lock.release()

    def _take_feed(self, session: ReverseSession, fresh: bool) -> Feed:
        """The feed a Play publishes to.

        The session's armed feed is taken over (the page's click may follow it already): when it
        sent the page a frame, the play goes on from that frame. A new run (`fresh`) gets a new
        feed: the armed one could only have sent a frame of the run before.
        """
        armed, session.armed = session.armed, None
        if armed is None:
            return FEEDS.open()
        started = armed.disarm()
        if fresh or armed.closed:
            FEEDS.close(armed)
            return FEEDS.open()
        if started is not None:
            with session.lock:
                session.cursor = started
        return armed

    def _announce(self, session: ReverseSession, spec: Spec, rate: float, fresh: bool, T: int) -> None:
        """After a new run's first frame: warnings about its settings, and its cost when it is long."""
        if fresh:
            self._advise(spec, T)
            self._say_cost(session, rate)

    @staticmethod
    def _advise(spec: Spec, T: int) -> None:
        """Warn (without stopping) about settings that work but are likely not what the user wants."""
        for lane in spec.lanes:
            if lane.sampler in ANCESTRAL and lane.steps < T // 10:
                gr.Warning(f"{sampler_name(lane.sampler)} with {lane.steps} of T={T} steps adds a lot of fresh noise "
                           "per step and gives poor samples; DDIM or DPM-Solver++ are made for few steps.")

    def _say_cost(self, session: ReverseSession, rate: float) -> None:
        """Before a run that takes more than 10 s here: how long, and the faster choice."""
        spec, est = session.spec, session.estimate
        at_speed = session.total / rate if rate != math.inf else 0.0
        if max(est, at_speed) <= 10:
            return
        per_call = est / max(1, sum(lane.steps for lane in spec.lanes))
        why = (f"computing takes about {say_seconds(est)} on this device ({per_call * 1000:.0f} ms per step)"
               if est >= at_speed else f"playing {session.total} steps at {rate:g} per second takes "
                                        f"{say_seconds(at_speed)}")
        faster = (f"DDIM with 50 steps would take about {say_seconds(per_call * 50)}"
                  if any(lane.sampler in ANCESTRAL for lane in spec.lanes) else "fewer steps or samples are faster")
        gr.Info(f"This run: {why}. Pause or Stop at any time; {faster}.")

    def pause(self, session):
        """Stop playback after the current step; the run can go on with Play.

        While a generator plays, it may move one more frame before it notices, so it sends the
        closing view itself (as with Stop): a caption written here could name an older frame than
        the one left on screen. With nothing playing the answer comes from here.
        """
        if not isinstance(session, ReverseSession):
            return self.status(session, "Paused.")
        playing = session.token  # no lock: a step in progress must not hold up the answer
        if playing is not None:  # (a second press finds nothing playing and leaves the mark alone)
            session.paused = playing
            session.token = None
            return gr.skip()
        return self.status(session, "Paused.")

    STOPPED = "Stopped. The frames computed so far stay; Play starts over."

    def stop(self, session):
        """End the run: nothing more is computed; the recorded frames stay for scrubbing and export.

        A playing generator notices within one sampler step and sends the last view itself (a
        cancelled generator's last output can reach the browser after this handler's, so the run is
        ended cooperatively rather than cancelled); with nothing playing the view comes from here.
        """
        if not isinstance(session, ReverseSession) or session.traj is None:
            return (gr.skip(),) * 4
        with session.lock:
            playing = session.token
            if playing is not None:  # a second press leaves the mark of the run the first one ended
                session.stopped = playing
            session.token = None
            session.clock = None
        if playing is not None:
            return (gr.skip(),) * 4
        return self.view(session, session.cursor, note=self.STOPPED)

    def step(self, delta, session):
        """Move one frame back (-1) or forward (+1); forward past the end computes the next step."""
        if not isinstance(session, ReverseSession) or session.traj is None or not len(session.traj):
            raise gr.Error("Nothing to step through yet: press Play first.")
        session.token = None  # stepping takes over from playback
        delta = whole("step", delta, -1000, 1000)
        target = session.cursor + delta
        with session.lock:
            while target > len(session.traj) - 1 and self._advance(session):
                pass
            session.cursor = max(0, min(target, len(session.traj) - 1))
        return self.view(session, session.cursor)

    def back(self, session):
        return self.step(-1, session)

    def forward(self, session):
        return self.step(1, session)

    def scrub(self, frame, session):
        """Show recorded frame number `frame` (pauses playback)."""
        if not isinstance(session, ReverseSession) or session.traj is None or not len(session.traj):
            return (gr.skip(),) * 4
        session.token = None
        session.cursor = max(0, min(whole("frame", frame, 0, 10**7), len(session.traj) - 1))
        return self.view(session, session.cursor, slider=False)

    # export and the final sample ------------------------------------------------------------

    def export(self, fmt, session, progress=gr.Progress()):
        """Write the recorded frames as GIF or MP4; returns the file's path (for a gr.File).

        Frames are drawn one at a time and handed to the encoder as they are drawn, with progress."""
        if fmt not in animation.EXPORT_FORMATS:
            raise gr.Error(f"export format must be one of {', '.join(animation.EXPORT_FORMATS)}, got {fmt!r}")
        if not isinstance(session, ReverseSession) or session.traj is None or not len(session.traj):
            raise gr.Error("Nothing to export yet: press Play and let some frames arrive first.")
        traj = session.traj
        picks = animation.pick_frames(len(traj), EXPORT_MAX_FRAMES[fmt])
        frames = (self.raster(session, k) for k in picks)
        spec = session.spec
        names = "-vs-".join(f"{lane.sampler.replace('+', 'p')}{lane.steps}" for lane in spec.lanes)
        out = Path(tempfiles.mkdtemp(prefix="reverse-")) / f"reverse-{names}-seed{spec.seed}.{fmt}"
        progress(0, desc=f"Drawing and encoding {len(picks)} frames")
        animation.export(frames, out, fps=EXPORT_FPS[fmt],
                         progress=lambda k: progress((k, len(picks)), desc="frames", unit="frames"))
        gr.Info(f"Exported {len(picks)} frames as {fmt.upper()}.")
        return str(out)

    def estimate(self, spec: Spec, loaded) -> tuple[float, float]:
        """(seconds for the whole run, seconds per model call) on this device, from a measured call."""
        model, _, meta, _ = loaded
        per_call = COSTS.seconds_per_call(spec.checkpoint, model, meta["sample_shape"], spec.n, self.ctx.device)
        return per_call * sum(lane.steps for lane in spec.lanes), per_call

    def _what_fits(self, spec: Spec, per_call: float, budget: float) -> str:
        """A setting that fits `budget` seconds: fewer steps, or fewer samples."""
        steps = max(1, int(budget / per_call))
        lane = spec.lanes[0]
        tips = [f"{lane.label.split(' (')[0]} with at most {steps} steps"]
        if lane.sampler in ANCESTRAL:
            tips.append("DDIM with 50 steps")
        if spec.n > 1:
            tips.append(f"fewer samples (the time grows with n = {spec.n})")
        return "; ".join(tips)

    def sample(self, checkpoint, sampler, steps, eta, seed, n, spacing="linear"):
        """Run one sampler to the end without animation: streams (None, progress) then (picture, stats).

        The cost is estimated first from a measured model call; a run over LIMIT_S is refused with a
        setting that fits. It stops between steps when cancelled, freeing the queue.
        """
        spec, loaded = self.spec(checkpoint, sampler, steps, eta, seed, n, spacing=spacing)
        seconds_est, per_call = self.estimate(spec, loaded)
        if seconds_est > LIMIT_S:
            raise gr.Error(f"This run would take about {say_seconds(seconds_est)} on this device "
                           f"({per_call * 1000:.0f} ms per step x {spec.lanes[0].steps} steps at n = {spec.n}); "
                           f"one request may take at most {say_seconds(LIMIT_S)}. What fits: "
                           f"{self._what_fits(spec, per_call, LIMIT_S)}.")
        its, _ = self._iterators(spec, loaded)
        start = last_report = time.perf_counter()
        last = None
        for last in its[0]:
            now = time.perf_counter()
            if now - last_report >= 0.5:  # a cancel takes effect at the next yield
                last_report = now
                done = (last.i + 1) / last.n
                yield gr.skip(), {"status": "sampling", "step": last.i + 1, "of": last.n,
                                  "seconds_left": round((now - start) * (1 - done) / done, 1),
                                  "estimated_seconds": round(seconds_est, 1)}
        seconds = time.perf_counter() - start
        x = last.x_next.float().cpu()
        final = snapshot(spec.kind, last.n, last.n, 0, last.x_next, last.x0, last.eps)
        lanes = spec.lanes
        if spec.kind == "image":
            pic = animation.image_frame((final,), lanes)
        elif spec.kind == "points":
            ref = reference_points(loaded[1].data.name, json.dumps(loaded[1].data.params, sort_keys=True))
            pic = animation.points_raster((final,), lanes, None, None, ref)
        else:
            pic = animation.signal_raster((final,), lanes)
        finite = bool(torch.isfinite(x).all())
        stats = {
            "checkpoint": Path(checkpoint).name, "sampler": spec.lanes[0].sampler, "steps": spec.lanes[0].steps,
            "eta": spec.lanes[0].eta, "spacing": spec.lanes[0].spacing, "seed": spec.seed, "n": spec.n, "shape": list(x.shape),
            "seconds": round(seconds, 3), "finite": finite,
            "mean": float(x.mean()) if finite else None, "std": float(x.std()) if finite else None,
            "min": float(x.min()) if finite else None, "max": float(x.max()) if finite else None,
            "estimated_seconds": round(seconds_est, 3),
        }
        yield pic, stats
