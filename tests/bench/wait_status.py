#!/usr/bin/env python3
"""Waits for a running daemon to reach a state, asking `relayban status --json` every 50 ms.

One interpreter for the whole wait: a python3 started per poll (as the benchmarks first did)
costs ~100 ms of CPU each, which on a 2-core machine took most of a core away from the
daemon being measured. Times are taken here, as each answer arrives, from T0 (epoch seconds,
`date +%s.%N` when the caller started what is measured; default: now): the interpreter's own
start and exit do not count.

usage: wait_status.py BIN CONFIG settled MIN_BANS [T0]  every log read, no line waiting, at
                                                       least MIN_BANS bans, nothing owed to
                                                       the kernel
       wait_status.py BIN CONFIG lines N [T0]          at least N lines read
       wait_status.py BIN CONFIG stored N [T0]         at least N bans, nothing owed to the
                                                       state database
Prints "SLOWEST READ DONE ANSWER" in seconds: the slowest status answer (the client's start
included), when every line was first seen read (settled only; 0 otherwise) and when the
state was reached, both after T0, and the slowest answer of the daemon itself: after each
poll a status request is sent on the control socket (`control_socket:` of CONFIG) straight
from here, and timed from connecting to the answer's end - the daemon's responsiveness
without the client's start (about 10 ms of CPU for the binary and its libraries, which on
two loaded cores may wait for one).
"""
import json
import re
import socket
import subprocess
import sys
import time


def socket_of(config):
    """The control socket's path from the configuration, or None."""
    try:
        m = re.search(r"^control_socket:\s*(\S+)", open(config).read(), re.M)
    except OSError:
        return None
    return m.group(1).strip("\"'") if m else None


def ask_directly(path):
    """Seconds from connecting to the end of the status answer's line."""
    started = time.monotonic()
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as s:
        s.connect(path)
        s.sendall(b'{"cmd":"status"}\n')
        got = b""
        while not got.endswith(b"\n"):
            chunk = s.recv(1 << 16)
            if not chunk:
                break
            got += chunk
    return time.monotonic() - started


def main():
    binary, config, mode, want = sys.argv[1], sys.argv[2], sys.argv[3], int(sys.argv[4])
    t0 = float(sys.argv[5]) if len(sys.argv) > 5 else time.time()
    slowest = 0.0
    slowest_direct = 0.0
    path = socket_of(config)
    read_at = 0.0
    while True:
        asked = time.monotonic()
        answer = subprocess.run([binary, "status", "--json", "-c", config], capture_output=True, text=True)
        slowest = max(slowest, time.monotonic() - asked)
        if path:
            try:
                slowest_direct = max(slowest_direct, ask_directly(path))
            except OSError:
                pass
        now = time.time() - t0
        try:
            d = json.loads(answer.stdout)
        except ValueError:
            d = None
        if d:
            if mode == "lines":
                if d["lines"] >= want:
                    break
            elif mode == "stored":
                if d["bans"] >= want and d["backlog"]["state_database"] == 0:
                    break
            else:
                logs = [log for jail in d.get("jails", []) for log in jail["logs"]]
                read = all(log.get("read") == log.get("size") for log in logs) and not d["backlog"]["lines"]
                if read and not read_at:
                    read_at = now
                if read and d["bans"] >= want and d["backlog"]["kernel"] == 0:
                    break
        time.sleep(0.05)
    print("%.3f %.2f %.2f %.3f" % (slowest, read_at, now, slowest_direct))


if __name__ == "__main__":
    main()
