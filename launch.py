"""Start the Diffusion Explorer in the browser.

    python launch.py [--host 127.0.0.1] [--port 7860] [--device auto|cpu|cuda|mps] [--share]
                     [--checkpoints DIR] [--threads N] [--present] [--auth USER:PASSWORD]
                     [--student-auth USER:PASSWORD] [--max-sessions N] [--session-idle-minutes M]

Serves on 127.0.0.1 (this machine only) unless told otherwise. A public --share link or a
non-loopback --host exposes the app to others; both are explicit opt-ins and print a warning
(and one more without a login). Served to others, expensive calls are rate-limited per client.
Needs no network: everything the app shows ships in assets/ or is made on the spot.
"""
from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

from core.device import DEVICE_CHOICES
from core.threads import add_threads_option, apply_threads
from explorer.serving import AUTH_ENV, STUDENT_AUTH_ENV, Limits, is_loopback, logins_from, prepare_runs_dir


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description="Diffusion Explorer: an interactive look at diffusion models.")
    p.add_argument("--host", default="127.0.0.1",
                   help="address to listen on (default 127.0.0.1: this machine only; 0.0.0.0 exposes it)")
    p.add_argument("--port", type=int, default=7860, help="port to listen on (default 7860)")
    p.add_argument("--device", default="auto", choices=DEVICE_CHOICES,
                   help="compute device for models (default auto: cuda > mps > cpu)")
    p.add_argument("--share", action="store_true", help="also open a public gradio.live link (off by default)")
    p.add_argument("--present", action="store_true",
                   help="open in the presenter view: large pictures and text for a projector (P toggles it)")
    p.add_argument("--checkpoints", default="runs", metavar="DIR",
                   help="folder for your own checkpoints, searched besides the shipped ones (default runs/; "
                        "created when missing)")
    p.add_argument("--auth", metavar="USER:PASSWORD",
                   help=f"require this login (the teacher: everything); or set {AUTH_ENV}, which keeps the "
                        "password out of the process list")
    p.add_argument("--student-auth", metavar="USER:PASSWORD",
                   help=f"a second login for students: the quiz and the views, nothing that trains, samples, "
                        f"evaluates, exports or uploads; or set {STUDENT_AUTH_ENV}")
    defaults = Limits()
    p.add_argument("--max-sessions", type=int, default=defaults.max_sessions, metavar="N",
                   help=f"live sessions (browser tabs, API clients) at most; more are told the class is full "
                        f"(default {defaults.max_sessions})")
    p.add_argument("--session-idle-minutes", type=float, default=defaults.idle_minutes, metavar="M",
                   help=f"forget a session unused this long (default {defaults.idle_minutes:g})")
    add_threads_option(p)
    args = p.parse_args(argv)
    # Everything below is checked before the slow imports, so a mistake is reported at once.
    if not 1 <= args.port <= 65535:
        p.error(f"--port must be between 1 and 65535, got {args.port}")
    if args.threads is not None and args.threads < 1:
        p.error(f"--threads must be at least 1, got {args.threads}")
    try:
        args.logins = logins_from(args.auth, args.student_auth)
        args.limits = Limits(max_sessions=args.max_sessions, idle_minutes=args.session_idle_minutes)
    except ValueError as e:
        p.error(str(e))
    return args


def checkpoints_dir(args: argparse.Namespace) -> Path:
    """The --checkpoints folder, created (and said so) when missing; exits with a message if unusable."""
    try:
        path, created = prepare_runs_dir(args.checkpoints)
    except ValueError as e:
        sys.exit(f"error: {e}")
    if created:
        print(f"Created the checkpoint folder {path}", file=sys.stderr)
    return path


def main(argv: list[str] | None = None) -> None:
    args = parse_args(argv)
    runs_dir = checkpoints_dir(args)
    os.environ.setdefault("GRADIO_ANALYTICS_ENABLED", "False")  # no calls home

    import torch
    from PIL import Image

    from explorer import guards, sessions
    from explorer.app import build_app, launch_options
    from explorer.context import Settings
    from explorer.images import MAX_PIXELS

    apply_threads(args.threads)
    # Pillow refuses images over 2x this before decoding, also inside Gradio's own upload handling.
    Image.MAX_IMAGE_PIXELS = MAX_PIXELS

    if args.share:
        print("warning: --share publishes this app on a public gradio.live address; anyone with the link "
              "can use it and run work on this machine.", file=sys.stderr)
    shared = args.share or not is_loopback(args.host)
    if not is_loopback(args.host):
        print(f"warning: listening on {args.host}, not only this machine: other computers on the network "
              "can reach the app.", file=sys.stderr)
    if shared and not args.logins.enabled:
        print(f"warning: no login: anyone who reaches the app can train, sample and fill the disk. Set one with "
              f"--auth USER:PASSWORD or {AUTH_ENV}.", file=sys.stderr)

    settings = Settings(host=args.host, port=args.port, device=args.device, share=args.share,
                        runs_dir=runs_dir)
    demo = build_app(settings)
    # Rate limits protect a machine others reach; on 127.0.0.1 the only client is its owner.
    guards.apply(demo, args.limits if shared else None, args.logins)
    demo.queue(max_size=64)
    _, local_url, share_url = demo.launch(
        server_name=args.host, server_port=args.port, share=args.share, prevent_thread_lock=True,
        quiet=True, auth=args.logins.check if args.logins.enabled else None,
        auth_message="Diffusion Explorer: log in with the name and password your teacher gave you.",
        **launch_options(present=args.present))
    sessions.install(demo, args.limits)
    print(f"Diffusion Explorer is running at {local_url}  (device: {demo.ctx.device}; Ctrl+C to stop)")
    if share_url:
        print(f"Public link: {share_url}")
    try:
        demo.block_thread()
    except KeyboardInterrupt:
        pass
    finally:
        demo.close()


if __name__ == "__main__":
    main()
