"""Email receivers: require_tls is on unless the SMTP server is on loopback.
A real aiosmtpd sink without STARTTLS, on 127.0.0.1 and on an address of a
veth pair the test makes (10.213.x.1, not loopback); an explicit
require_tls wins either way."""
import os
import subprocess
import uuid

import pytest

from alert_servers import SmtpSink


def plan_with(write_plan, smtp, extra=""):
    return write_plan("alerts:\n  receivers:\n    - name: mail\n"
                      f"      email: {{ to: [ops@example.com], from: bcdr@web-1, smtp: '{smtp}'"
                      f"{extra} }}\n      timeout: 5s\n  route: {{ receiver: mail }}\n")


@pytest.fixture
def outside_address():
    """An address of this host that is not loopback: one end of a veth pair."""
    if os.geteuid() != 0:
        pytest.skip("needs root to add a veth pair")
    name = "bt" + uuid.uuid4().hex[:8]
    addr = f"10.213.{os.getpid() % 250 + 1}.1"
    ip = ["ip", "link", "add", name, "type", "veth", "peer", "name", name + "p"]
    subprocess.run(ip, check=True)
    try:
        subprocess.run(["ip", "addr", "add", addr + "/24", "dev", name], check=True)
        for dev in (name, name + "p"):
            subprocess.run(["ip", "link", "set", dev, "up"], check=True)
        # the address is usable once duplicate address detection is done (v4: at once)
        yield addr
    finally:
        subprocess.run(["ip", "link", "del", name], check=False)


def test_loopback_without_tls_is_delivered_by_default(bcdr, write_plan):
    for host in ("127.0.0.1", "localhost"):
        with SmtpSink() as smtp:
            plan = plan_with(write_plan, f"smtp://{host}:{smtp.port}")
            r = bcdr("alert", "test", "-c", plan, "mail")
            assert r.code == 0, r
            (mail,) = smtp.wait(1)
            assert mail["to"] == ["ops@example.com"]


def test_outside_loopback_tls_is_required_by_default(bcdr, write_plan, outside_address):
    with SmtpSink(host=outside_address) as smtp:
        plan = plan_with(write_plan, smtp.url)
        r = bcdr("alert", "test", "-c", plan, "mail", "--json")
        assert r.code == 1, r
        error = r.json()["error"]
        assert smtp.url in error
        assert "no STARTTLS" in error and "require_tls: false" in error, error
        assert smtp.messages == []

        # the operator's explicit choice wins
        plan = plan_with(write_plan, smtp.url, ", require_tls: false")
        r = bcdr("alert", "test", "-c", plan, "mail")
        assert r.code == 0, r
        (mail,) = smtp.wait(1)
        assert mail["message"]["Subject"].startswith("[FIRING:1] bcdr-test")


def test_explicit_require_tls_on_loopback_wins(bcdr, write_plan):
    with SmtpSink() as smtp:
        plan = plan_with(write_plan, smtp.url, ", require_tls: true")
        r = bcdr("alert", "test", "-c", plan, "mail")
        assert r.code == 1, r
        assert "no STARTTLS" in r.err
        assert smtp.messages == []
