"""Starts `nearest serve` for the tests: a fresh root each, on a free loopback port."""
import os
import re
import signal
import subprocess
import tempfile
import time

import pytest

ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", ".."))
BINARY = os.environ.get("NEAREST_BIN", os.path.join(ROOT, ".build", "release", "nearest"))


class Server:
    """One `nearest serve` process; `url` once it listens."""

    def __init__(self, root, *args, env=None):
        self.root = root
        self.args = list(args)
        self.env = env
        self.process = None
        self.url = None

    def start(self, port=0):
        self.process = subprocess.Popen(
            [BINARY, "serve", "--root", self.root, "--port", str(port), *self.args],
            stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True,
            env={**os.environ, **(self.env or {})})
        deadline = time.time() + 60
        while time.time() < deadline:
            line = self.process.stdout.readline()
            if not line:
                raise RuntimeError(f"nearest serve exited with {self.process.wait()}")
            found = re.search(r"listening on (http://[\d.]+:(\d+))", line)
            if found:
                self.url, self.port = found.group(1), int(found.group(2))
                return self
        raise RuntimeError("nearest serve did not start within 60 s")

    def stop(self, sig=signal.SIGTERM):
        if self.process and self.process.poll() is None:
            self.process.send_signal(sig)
            code = self.process.wait(timeout=60)
            self.process.stdout.close()
            return code
        return self.process.returncode if self.process else None


@pytest.fixture
def root():
    with tempfile.TemporaryDirectory(prefix="nearest-serve-") as directory:
        yield directory


@pytest.fixture
def server(root):
    s = Server(root).start()
    yield s
    # A clean stop (and, in a sanitizer build, no report: it would set the exit status).
    assert s.stop() == 0, "nearest serve did not stop cleanly on SIGTERM"


@pytest.fixture
def client(server):
    from qdrant_client import QdrantClient
    c = QdrantClient(url=server.url, timeout=60)
    yield c
    c.close()


def pytest_configure(config):
    if not os.path.exists(BINARY):
        raise pytest.UsageError(f"{BINARY} is missing: build it first (swift build -c release)")
