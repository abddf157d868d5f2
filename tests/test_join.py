"""explorer.lecture.join: the address a class opens, and its QR code."""
import re

import segno

from explorer.lecture import join, url_state


def test_no_join_address_when_the_app_listens_on_this_machine_only():
    for host in ("127.0.0.1", "localhost", "::1", "127.0.1.1"):
        assert join.join_url(host, 7860, lan="192.168.1.20") is None
    card = join.card_html("127.0.0.1", 7860)
    assert "Students cannot join yet" in card and "--host 0.0.0.0" in card and "<svg" not in card


def test_every_interface_joins_through_the_lan_address():
    url = join.join_url("0.0.0.0", 7861, lan="192.168.1.20")
    assert url == "http://192.168.1.20:7861/?tab=evaluate&view=quiz&student=1"
    assert join.join_url("10.0.0.5", 80) == "http://10.0.0.5:80/?tab=evaluate&view=quiz&student=1"
    assert join.join_url("fe80::1", 7860).startswith("http://[fe80::1]:7860/")
    values, problems = url_state.read(dict(p.split("=") for p in url.split("?")[1].split("&")))
    assert problems == [] and values == {"tab": "evaluate", "view": "quiz", "student": True}


def test_the_card_shows_the_address_and_its_qr_code():
    url = join.join_url("0.0.0.0", 7860, lan="192.168.1.20")
    card = join.card_html("0.0.0.0", 7860, lan="192.168.1.20")
    assert card.count("<svg") == 1 and url.replace("&", "&amp;") in card
    # the code is the address's own QR symbol: segno's matrix for the URL, drawn module by module
    qr = segno.make(url, error="m", micro=False)
    size = (qr.symbol_size(scale=8, border=2))[0]
    assert re.search(rf'width="{size}"', card) and qr.designator.endswith("M")


def test_the_lan_address_is_a_real_non_loopback_address_or_none():
    ip = join.lan_address()
    assert ip is None or (not ip.startswith("127.") and ip != "0.0.0.0")
