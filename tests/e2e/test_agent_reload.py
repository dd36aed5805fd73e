"""SIGHUP with a changed agent: section: a new listen address is bound at
once (the old one is kept when the new one cannot be bound), a new
state_dir waits for a restart and says so."""
import signal
import socket
import urllib.request

from agent_helpers import free_port


def set_head(a, port, state_dir):
    a.port = port
    a.head = (f"agent: {{ listen: 127.0.0.1:{port}, state_dir: {state_dir}, "
              "interval: 1s }\n")


def answers(port):
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/healthz", timeout=2) as r:
            return r.status == 200
    except OSError:
        return False


def agent_events(a, text):
    return [e for e in a.events(kind="agent") if text in e["message"]]


def test_sighup_moves_the_api_and_keeps_the_state_dir(agent, tmp_path):
    body = f"checks:\n  - name: site\n    file: {{ path: '{tmp_path}' }}\n"
    a = agent(body).start()
    old_port, state_dir = a.port, a.state_dir

    # a new address: bound at once, the old one closed
    new_port = free_port()
    set_head(a, new_port, state_dir)
    a.write_plan(body)
    a.signal(signal.SIGHUP)
    a.url = f"http://127.0.0.1:{new_port}"
    a.wait_for(lambda: answers(new_port), what="the API on the new port")
    a.wait_for(lambda: not answers(old_port), what="the old port to close")
    assert agent_events(a, f"the API moved from '127.0.0.1:{old_port}' to "
                           f"'127.0.0.1:{new_port}'")
    # a result in flight at the reload is dropped with the old check, so
    # under load the first one may come a turn later
    a.wait_for(lambda: a.api("/checks/site")["state"] == "ok", what="the check to be ok")

    # an address that cannot be bound: the API stays where it is
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen(1)
        busy = taken.getsockname()[1]
        set_head(a, busy, state_dir)
        a.write_plan(body)
        a.signal(signal.SIGHUP)
        a.wait_for(lambda: agent_events(a, f"cannot listen on '127.0.0.1:{busy}'"),
                   what="the bind error event")
        assert answers(new_port)
        assert "cannot listen on '127.0.0.1:%d'" % busy in a.log.read_text()

    # a new state_dir: kept until a restart, and said
    other = tmp_path / "elsewhere"
    set_head(a, new_port, other)
    a.write_plan(body)
    a.signal(signal.SIGHUP)
    (ev,) = a.wait_for(lambda: agent_events(a, "needs a restart"), what="the state_dir event")
    assert str(other) in ev["message"] and str(state_dir) in ev["message"]
    assert answers(new_port)
    assert not other.exists()
    a.wait_for(lambda: a.api("/status")["checks"]["ok"] == 1, what="one check ok")
