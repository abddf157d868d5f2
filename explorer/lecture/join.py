"""How a class joins: the address students open on their phones, as text and as a QR code.

Served on the LAN (`python launch.py --host 0.0.0.0`), the presenter shows the join card (button
Join or key J): a QR code of `http://<this machine's LAN address>:<port>/?tab=evaluate&view=quiz&
student=1`, which opens the quiz alone, sized for a phone. Served on 127.0.0.1 (the default) no
other device can reach the app, so the card says so and how to serve the class instead of
showing a code that cannot work. The QR code is drawn by segno (a maintained, dependency-free QR
library) as inline SVG: nothing is fetched, nothing is written to disk.
"""
from __future__ import annotations

import html
import ipaddress
import socket

import segno

from ..serving import is_loopback

STUDENT_QUERY = "?tab=evaluate&view=quiz&student=1"


def lan_address() -> str | None:
    """This machine's address on its network (the one the default route leaves from), or None.

    Connecting a UDP socket sends nothing; it only makes the OS choose the outgoing interface.
    """
    try:
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
            s.connect(("10.255.255.255", 1))
            ip = s.getsockname()[0]
    except OSError:
        return None
    return None if ipaddress.ip_address(ip).is_loopback or ip == "0.0.0.0" else ip


def join_url(host: str, port: int, lan: str | None = None) -> str | None:
    """The address students open, or None when the app listens on this machine only.

    host: what the app listens on; 0.0.0.0 / :: (every interface) joins through the LAN address.
    lan: that address (found when not given).
    """
    if is_loopback(host):
        return None
    if host in ("0.0.0.0", "::", ""):
        host = lan or lan_address()
        if host is None:
            return None
    shown = f"[{host}]" if ":" in host else host
    return f"http://{shown}:{int(port)}/{STUDENT_QUERY}"


def qr_svg(url: str) -> str:
    """The URL as an inline SVG QR code (error correction M: readable from a projector screen)."""
    return segno.make(url, error="m", micro=False).svg_inline(scale=8, border=2, dark="#000", light="#fff")


def card_html(host: str, port: int, lan: str | None = None) -> str:
    """The join card's HTML (hidden until the presenter opens it)."""
    url = join_url(host, port, lan)
    close = '<button id="de-join-close">Close (Esc)</button>'
    if url is None:
        body = ("<h2>Students cannot join yet</h2><p>The app listens on this computer only "
                f"({html.escape(host)}). To let the class open the quiz on their phones, start it with"
                "</p><pre>python launch.py --host 0.0.0.0</pre><p>on a network you trust: everyone on it can "
                "then reach the app.</p>")
    else:
        body = (f'<h2>Join the quiz</h2><div class="de-join-qr">{qr_svg(url)}</div>'
                f'<p class="de-join-url">{html.escape(url)}</p>')
    return f'<div class="de-join-card" role="dialog" aria-label="Join the class quiz">{body}{close}</div>'
