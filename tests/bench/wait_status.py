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
Prints "SLOWEST READ DONE" in seconds: the slowest status answer (the client's start
included), when every line was first seen read (settled only; 0 otherwise) and when the
state was reached, both after T0.
"""
import json
import subprocess
import sys
import time


def main():
    binary, config, mode, want = sys.argv[1], sys.argv[2], sys.argv[3], int(sys.argv[4])
    t0 = float(sys.argv[5]) if len(sys.argv) > 5 else time.time()
    slowest = 0.0
    read_at = 0.0
    while True:
        asked = time.monotonic()
        answer = subprocess.run([binary, "status", "--json", "-c", config], capture_output=True, text=True)
        slowest = max(slowest, time.monotonic() - asked)
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
    print("%.3f %.2f %.2f" % (slowest, read_at, now))


if __name__ == "__main__":
    main()
