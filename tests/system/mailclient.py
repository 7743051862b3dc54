#!/usr/bin/env python3
"""Real mail clients for the system tests, each bound to its own source address.

  mailclient.py banner SRC PORT             exit 0 when the server's greeting arrives
  mailclient.py burst SRC PORT N            N connections at once that read the greeting
  mailclient.py imap SRC USER PASS [N]      N IMAP logins, one connection each
  mailclient.py pop SRC USER PASS [N]       N POP3 logins, one connection each

Prints one line per attempt: 'ok' or 'refused: <reason>'. Exit 0 unless a connection
could not be made at all.
"""
import imaplib
import poplib
import socket
import sys

TIMEOUT = 20


def server_for(src):
    return "fd77::1" if ":" in src else "10.77.0.1"


def connect(src, port, timeout):
    family = socket.AF_INET6 if ":" in src else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    sock.settimeout(timeout)
    sock.bind((src, 0))
    sock.connect((server_for(src), port))
    return sock


def banner(src, port):
    try:
        sock = connect(src, int(port), 3)
        data = sock.recv(200)
        sock.close()
    except OSError as err:
        print(f"no answer: {err}")
        return 1
    print(data.decode("ascii", "replace").strip())
    return 0 if data else 1


def burst(src, port, n):
    """N connections opened together, each reading the greeting: a burst of log lines."""
    socks = [connect(src, int(port), 5) for _ in range(int(n))]
    got = sum(1 for sock in socks if sock.recv(200))
    for sock in socks:
        sock.close()
    print(f"{got} greetings")
    return 0 if got == int(n) else 1


class BoundIMAP(imaplib.IMAP4):
    def __init__(self, src):
        self._src = src
        super().__init__(server_for(src), 143, timeout=TIMEOUT)

    def _create_socket(self, timeout):
        return connect(self._src, 143, timeout)


class BoundPOP(poplib.POP3):
    def __init__(self, src):
        self._src = src
        super().__init__(server_for(src), 110, timeout=TIMEOUT)

    def _create_socket(self, timeout):
        return connect(self._src, 110, timeout)


def imap(src, user, password, count=1):
    for _ in range(int(count)):
        conn = BoundIMAP(src)
        try:
            conn.login(user, password)
            print("ok")
            conn.logout()
        except imaplib.IMAP4.error as err:
            print(f"refused: {err}")
            try:
                conn.logout()
            except (imaplib.IMAP4.error, OSError):
                pass
    return 0


def pop(src, user, password, count=1):
    for _ in range(int(count)):
        conn = BoundPOP(src)
        try:
            conn.user(user)
            conn.pass_(password)
            print("ok")
            conn.quit()
        except poplib.error_proto as err:
            print(f"refused: {err}")
            try:
                conn.quit()
            except (poplib.error_proto, OSError):
                pass
    return 0


if __name__ == "__main__":
    commands = {"banner": banner, "burst": burst, "imap": imap, "pop": pop}
    if len(sys.argv) < 2 or sys.argv[1] not in commands:
        print(__doc__, file=sys.stderr)
        sys.exit(2)
    try:
        sys.exit(commands[sys.argv[1]](*sys.argv[2:]))
    except OSError as err:
        print(f"cannot connect: {err}", file=sys.stderr)
        sys.exit(1)
