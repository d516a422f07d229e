"""idp.live_connections.closed_by_server: an idle connection's socket with something to read is
one the server closed; a quiet one is live, whatever its descriptor's number."""

from __future__ import annotations

import os
import resource
import socket
from types import SimpleNamespace

import pytest

from idp.live_connections import closed_by_server

HIGH = 1500  # above select.select's limit of 1024 descriptors


@pytest.fixture
def idle():
    """A fake psycopg connection on one end of a socket pair, its descriptor numbered HIGH, and
    the other end, which plays the server."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft <= HIGH:
        if hard != resource.RLIM_INFINITY and hard <= HIGH:
            pytest.skip(f"this process may not open descriptor {HIGH}")
        resource.setrlimit(resource.RLIMIT_NOFILE, (HIGH + 1, hard))
    client, server = socket.socketpair()
    os.dup2(client.fileno(), HIGH)
    try:
        yield SimpleNamespace(closed=False, pgconn=SimpleNamespace(socket=HIGH)), server
    finally:
        os.close(HIGH)
        client.close()
        server.close()
        resource.setrlimit(resource.RLIMIT_NOFILE, (soft, hard))


def test_a_quiet_socket_is_a_live_connection(idle):
    connection, _server = idle
    assert closed_by_server(connection) is False


def test_a_word_from_the_server_is_a_closed_connection(idle):
    connection, server = idle
    server.send(b"E")  # the server's notice that it ends the backend
    assert closed_by_server(connection) is True


def test_a_hang_up_is_a_closed_connection(idle):
    connection, server = idle
    server.shutdown(socket.SHUT_WR)
    assert closed_by_server(connection) is True


def test_a_connection_psycopg_knows_closed_or_an_unusable_socket_is_closed(idle):
    connection, _server = idle
    assert closed_by_server(SimpleNamespace(closed=True, pgconn=connection.pgconn)) is True
    assert closed_by_server(SimpleNamespace(closed=False, pgconn=SimpleNamespace(socket=-1))) is True


def test_sqlite_s_connections_are_never_closed_by_a_server():
    assert closed_by_server(SimpleNamespace()) is False
