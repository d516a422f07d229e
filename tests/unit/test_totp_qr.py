"""The enrolment QR code is an SVG image that renders at any size and holds the whole URI."""

from __future__ import annotations

import base64
import re
import xml.etree.ElementTree as ET

import qrcode

from idp.services import totp

SVG = "{http://www.w3.org/2000/svg}"


def _svg(data_uri: str) -> ET.Element:
    prefix = "data:image/svg+xml;base64,"
    assert data_uri.startswith(prefix)
    return ET.fromstring(base64.b64decode(data_uri[len(prefix):]))


def test_the_enrolment_qr_code_is_one_scalable_path_of_the_uris_modules():
    uri = totp.provisioning_uri(totp.new_secret(), "anne.de.vries@example.com", "Boekhouden")
    root = _svg(totp.qr_data_uri(uri))
    assert root.tag == SVG + "svg"
    qr = qrcode.QRCode(border=2)
    qr.add_data(uri)
    qr.make(fit=True)
    modules = len(qr.get_matrix())  # the code's modules and the quiet zone
    width = [float(v) for v in root.get("viewBox").split()][2:]
    assert width[0] == width[1] > 0
    path = root.find(SVG + "path")
    assert path is not None
    # one square per dark module, none outside the image
    squares = re.findall(r"M([\d.]+),([\d.]+)H", path.get("d"))
    assert len(squares) == sum(map(sum, qr.get_matrix()))
    assert all(0 <= float(x) < width[0] and 0 <= float(y) < width[0] for x, y in squares)
    assert width[0] / modules == float(squares[0][0]) / 2  # a two-module quiet zone around it


def test_a_longer_uri_makes_a_larger_code():
    short = _svg(totp.qr_data_uri("otpauth://totp/a?secret=AAAA"))
    long = _svg(totp.qr_data_uri("otpauth://totp/a?secret=" + "A" * 200))
    assert float(long.get("viewBox").split()[2]) > float(short.get("viewBox").split()[2])
