"""Start the Diffusion Explorer in the browser.

    python launch.py [--host 127.0.0.1] [--port 7860] [--device auto|cpu|cuda|mps] [--share]
                     [--checkpoints DIR] [--threads N] [--present]

Serves on 127.0.0.1 (this machine only) unless told otherwise. A public --share link or a
non-loopback --host exposes the app to others; both are explicit opt-ins and print a warning.
Needs no network: everything the app shows ships in assets/ or is made on the spot.
"""
from __future__ import annotations

import argparse
import ipaddress
import os
import sys
from pathlib import Path

from core.device import DEVICE_CHOICES
from core.threads import add_threads_option, apply_threads


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
                   help="folder for your own checkpoints, searched besides the shipped ones (default runs/)")
    add_threads_option(p)
    args = p.parse_args(argv)
    if not 1 <= args.port <= 65535:
        p.error(f"--port must be between 1 and 65535, got {args.port}")
    if args.threads is not None and args.threads < 1:
        p.error(f"--threads must be at least 1, got {args.threads}")  # before the slow imports
    return args


def is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def main(argv: list[str] | None = None) -> None:
    args = parse_args(argv)
    os.environ.setdefault("GRADIO_ANALYTICS_ENABLED", "False")  # no calls home

    import torch
    from PIL import Image

    from explorer.app import build_app, launch_options
    from explorer.context import Settings
    from explorer.images import MAX_PIXELS

    apply_threads(args.threads)
    # Pillow refuses images over 2x this before decoding, also inside Gradio's own upload handling.
    Image.MAX_IMAGE_PIXELS = MAX_PIXELS

    if args.share:
        print("warning: --share publishes this app on a public gradio.live address; anyone with the link "
              "can use it and run work on this machine.", file=sys.stderr)
    if not is_loopback(args.host):
        print(f"warning: listening on {args.host}, not only this machine: other computers on the network "
              "can reach the app.", file=sys.stderr)

    settings = Settings(host=args.host, port=args.port, device=args.device, share=args.share,
                        runs_dir=Path(args.checkpoints))
    demo = build_app(settings)
    demo.queue(max_size=64)
    _, local_url, share_url = demo.launch(
        server_name=args.host, server_port=args.port, share=args.share, prevent_thread_lock=True,
        quiet=True, **launch_options(present=args.present))
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
