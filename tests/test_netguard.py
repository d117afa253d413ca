import socket
import subprocess
import sys

import pytest
from sitecustomize import NetworkAccessBlocked


def test_connection_to_the_network_is_blocked():
    s = socket.socket()
    with pytest.raises(NetworkAccessBlocked):
        s.connect(("192.0.2.1", 80))  # TEST-NET-1
    s.close()


def test_name_lookup_is_blocked():
    with pytest.raises(NetworkAccessBlocked):
        socket.getaddrinfo("example.org", 443)


def test_loopback_is_allowed():
    server = socket.socket()
    server.bind(("127.0.0.1", 0))
    server.listen(1)
    client = socket.create_connection(server.getsockname(), timeout=5)
    client.close()
    server.close()


def test_subprocesses_are_guarded_too():
    code = "import socket; socket.create_connection(('192.0.2.1', 80), timeout=1)"
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert proc.returncode != 0
    assert "tests may not reach the network" in proc.stderr
