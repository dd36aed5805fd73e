"""The agent's anomaly detector across restarts: its state goes to
state.db, so a restart (even kill -9) resumes it instead of starting a new
probation; a damaged saved state is refused and the detector starts afresh."""
import signal
import sqlite3
import struct

PLAN = """
checks:
  - name: cpu
    system: cpu
    interval: 50ms
    anomaly: true
"""


def saved_samples(a):
    """Samples of the check's saved predictor (the image's header: magic,
    version, size, samples), or None."""
    db = sqlite3.connect(a.state_dir / "state.db", timeout=10)
    try:
        row = db.execute("SELECT data FROM predict_state WHERE check_name = 'cpu'").fetchone()
    finally:
        db.close()
    if not row or len(row[0]) < 24 or row[0][:8] != b"bcdrprd1":
        return None
    return struct.unpack_from("=Q", row[0], 16)[0]


def samples(a):
    return a.api("/checks/cpu").get("anomaly_samples", 0)


def test_restart_resumes_the_detector(agent):
    a = agent(PLAN).start()
    saved = a.wait_for(lambda: (saved_samples(a) or 0) >= 200 and saved_samples(a),
                       timeout=120, what="a saved predictor of 200 samples")
    a.kill9()
    a.start()
    # Before its first run the check already has the samples it had learned.
    assert samples(a) >= saved
    a.wait_for(lambda: (saved_samples(a) or 0) > saved + 30, timeout=60,
               what="the resumed predictor saved again")
    now = samples(a)
    assert now > saved, now
    assert a.stop() == 0
    assert "saved predictor state unusable" not in a.log.read_text()


def test_damaged_state_starts_afresh(agent):
    a = agent(PLAN).start()
    saved = a.wait_for(lambda: (saved_samples(a) or 0) >= 100 and saved_samples(a),
                       timeout=120, what="a saved predictor")
    assert a.stop() == 0
    db = sqlite3.connect(a.state_dir / "state.db", timeout=10)
    data = bytearray(db.execute("SELECT data FROM predict_state").fetchone()[0])
    data[len(data) // 2] ^= 0xFF
    db.execute("UPDATE predict_state SET data = ?", (bytes(data),))
    db.commit()
    db.close()
    a.start()
    a.wait_for(lambda: "saved predictor state unusable" in a.log.read_text(), timeout=30,
               what="the warning about the damaged state")
    assert samples(a) < saved
    assert a.stop() == 0


def test_reload_keeps_the_detector(agent):
    a = agent(PLAN).start()
    before = a.wait_for(lambda: samples(a) >= 60 and samples(a), timeout=60,
                        what="60 samples learned")
    # The new plan runs the check once an hour: what it has after the
    # reload is what it carried over (from the state.db image, saved every
    # 30 samples, it would have fewer).
    a.write_plan(PLAN.replace("interval: 50ms", "interval: 1h"))
    before = samples(a)
    a.signal(signal.SIGHUP)
    a.wait_for(lambda: [e for e in a.events(kind="agent") if "reloaded" in e["message"]],
               what="the reload event")
    # The reloaded check goes on from what the old one learned.
    assert samples(a) >= before
    assert a.stop() == 0
