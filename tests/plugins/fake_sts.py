"""Attack fixtures for the deploy-identity edge (owned by the gate area).

``fake_sts``: the 40-line STS an insider would run on their own laptop: a loopback HTTP server that answers every
request with a ``GetCallerIdentity`` response naming whatever ARN the test sets. It counts the requests it got, so a
test can prove the pack never asked it.

``no_internet``: name resolution for anything but loopback fails (and is recorded), so a code path that would fall
back to AWS's public endpoints is observed without a packet leaving the machine.
"""

from __future__ import annotations

import socket
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

_RESPONSE = """<GetCallerIdentityResponse xmlns="https://sts.amazonaws.com/doc/2011-06-15/">
  <GetCallerIdentityResult><Arn>{arn}</Arn><UserId>AROAFAKE:{session}</UserId><Account>{account}</Account>
  </GetCallerIdentityResult><ResponseMetadata><RequestId>fake-1</RequestId></ResponseMetadata>
</GetCallerIdentityResponse>"""


class FakeSts:
    def __init__(self) -> None:
        self.arn = "arn:aws:sts::111111111111:assumed-role/ps019-deploy/spoofed"
        self.requests: list[str] = []
        fake = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:  # noqa: N802
                length = int(self.headers.get("Content-Length") or 0)
                fake.requests.append(self.rfile.read(length).decode("utf-8", "replace"))
                account = fake.arn.split(":")[4]
                body = _RESPONSE.format(arn=fake.arn, session=fake.arn.rsplit("/", 1)[-1], account=account).encode()
                self.send_response(200)
                self.send_header("Content-Type", "text/xml")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            do_GET = do_POST  # noqa: N815

            def do_CONNECT(self) -> None:  # noqa: N802 - used as an HTTPS proxy
                fake.requests.append(f"CONNECT {self.path}")
                self.send_error(502)

            def log_message(self, *args: object) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def fake_sts():
    fake = FakeSts()
    try:
        yield fake
    finally:
        fake.close()


_LOOPBACK = {"127.0.0.1", "localhost", "::1", "0.0.0.0"}


@pytest.fixture(scope="session", autouse=True)
def _loopback_only():
    """Every test: a name that is not loopback does not resolve, so no test can reach a real AWS endpoint (or
    anything else) by accident; it fails with a resolution error instead."""
    real = socket.getaddrinfo

    def guarded(host, *args, **kwargs):
        name = host.decode() if isinstance(host, bytes) else str(host)
        if name not in _LOOPBACK and name not in ("None", ""):
            raise socket.gaierror(socket.EAI_NONAME, f"no network in tests ({name})")
        return real(host, *args, **kwargs)

    socket.getaddrinfo = guarded
    try:
        yield
    finally:
        socket.getaddrinfo = real


@pytest.fixture
def no_internet(monkeypatch):
    """Hosts the code tried to resolve; every non-loopback name fails like an unreachable DNS."""
    attempted: list[str] = []
    real = socket.getaddrinfo

    def guarded(host, *args, **kwargs):
        name = host.decode() if isinstance(host, bytes) else str(host)
        if name not in _LOOPBACK:
            attempted.append(name)
            raise socket.gaierror(socket.EAI_NONAME, f"no network in tests ({name})")
        return real(host, *args, **kwargs)

    monkeypatch.setattr(socket, "getaddrinfo", guarded)
    return attempted
