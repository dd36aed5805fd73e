"""HTTP and HTTPS servers on 127.0.0.1 for the monitor tests: each answers
every GET with the status, body and delay set in its `cfg` dict (200 "ok"
at once by default)."""
import http.server
import ssl
import subprocess
import threading
import time


class ConfigHandler(http.server.BaseHTTPRequestHandler):
    def do_GET(self):
        cfg = self.server.cfg
        if cfg.get("delay"):
            time.sleep(cfg["delay"])
        body = cfg.get("body", b"ok\n")
        self.send_response(cfg.get("status", 200))
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args):
        pass


def start(tls_dir=None):
    """A started server; with tls_dir, HTTPS with a self-signed certificate
    for 127.0.0.1, valid for 10 days, written there."""
    srv = http.server.ThreadingHTTPServer(("127.0.0.1", 0), ConfigHandler)
    srv.cfg = {}
    if tls_dir is not None:
        key, crt = tls_dir / "key.pem", tls_dir / "crt.pem"
        subprocess.run(["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes",
                        "-days", "10", "-subj", "/CN=127.0.0.1",
                        "-keyout", str(key), "-out", str(crt)],
                       check=True, capture_output=True)
        ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        ctx.load_cert_chain(str(crt), str(key))
        srv.socket = ctx.wrap_socket(srv.socket, server_side=True)
    threading.Thread(target=srv.serve_forever, daemon=True).start()
    return srv


def stop(srv):
    srv.shutdown()
    srv.server_close()
