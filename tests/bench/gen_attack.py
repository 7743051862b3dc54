#!/usr/bin/env python3
"""Writes the attack logs of the scale benchmark (tests/bench/scale_bench.sh). Deterministic.

usage: gen_attack.py CASE LINES OUTPUT        (GEN_NOW=1: stamped from now on, not 2026-11-26)

cases (Postfix lines in classic syslog format, one second of log time per 1,000 lines):
  ipv4        one SASL failure from each of LINES distinct IPv4 addresses (a botnet)
  ipv6        one SASL failure from each of LINES distinct IPv6 /64s
  accounts    LINES failures naming invented accounts, from 1,000 addresses
  queueids    LINES authenticated submissions ("client=..., sasl_username=") whose queue ids
              never complete (no to=, no removed): the correlation table's worst case
  domains     one stolen account relaying to LINES distinct outside domains
  crafted     one line per shipped pattern family, each just under max_line (16384 bytes),
              repeating the pattern's literals and separators; LINES lines in all, round robin
"""
import os
import sys
import time

case, n, out = sys.argv[1], int(sys.argv[2]), sys.argv[3]
t0 = int(time.time()) if os.environ.get("GEN_NOW") else 1795688400  # 2026-11-26 10:20:00 UTC
MAX_LINE = 16384


def stamp(i):
    return time.strftime("%b %e %H:%M:%S", time.localtime(t0 + i // 1000) if os.environ.get("GEN_NOW")
                         else time.gmtime(t0 + i // 1000))


def v4(i):
    # 11.0.0.0 upward: public space, never the ignore list, distinct for i < 2**24 * 200
    i += 1
    return "%d.%d.%d.%d" % (11 + (i >> 24), (i >> 16) & 255, (i >> 8) & 255, i & 255)


def v6(i):
    return "2001:db8:%x:%x::1" % ((i >> 16) & 0xFFFF, i & 0xFFFF)


def sasl_fail(i, ip, user):
    return (f"{stamp(i)} mx1 postfix/smtpd[{1000 + i % 50000}]: warning: unknown[{ip}]: "
            f"SASL LOGIN authentication failed: UGFzc3dvcmQ6, sasl_username={user}\n")


def crafted_lines():
    """Lines aimed at single patterns: each repeats the literals its pattern looks for, so
    the literal gate lets it through and RE2 has the most work."""
    def fill(head, unit, tail=""):
        room = MAX_LINE - 1 - len(head) - len(tail)
        return head + (unit * (room // len(unit) + 1))[:room] + tail

    s = "Nov 26 10:20:00 mx1 "
    yield "postfix-sasl", fill(s + "postfix/smtpd[1]: warning: unknown[192.0.2.1]: SASL LOGIN authentication failed: ",
                               ", sasl_username=x@y", "")
    yield "postfix-client", fill(s + "postfix/smtpd[1]: 4FA2B3C4D5: client=unknown[192.0.2.1], sasl_method=LOGIN, sasl_username=",
                                 "a, sasl_username=")
    yield "postfix-to", fill(s + "postfix/smtp[1]: 4FA2B3C4D5: to=<", "a@b>, relay=x[192.0.2.1]:25, to=<")
    yield "postfix-reject", fill(s + "postfix/smtpd[1]: NOQUEUE: reject: RCPT from unknown[192.0.2.1]: 454 4.7.1 <",
                                 "a@b>: Relay access denied; from=<")
    yield "dovecot-login", fill(s + "dovecot: imap-login: Disconnected (auth failed, 1 attempts in 2 secs): user=<",
                                "x, rip=192.0.2.1, lip=192.0.2.2, user=<")
    yield "dovecot-ok", fill(s + "dovecot: imap-login: Login: user=<", "x>, method=PLAIN, rip=192.0.2.1, user=<")
    yield "sendmail-auth", fill(s + "sendmail[1]: AUTH=server, relay=[192.0.2.1], authid=", "user=x, relay=[192.0.2.1], ")
    yield "sendmail-relay", fill(s + "sm-mta[1]: x1: ruleset=check_rcpt, arg1=<", "a@b>, relay=[192.0.2.1], arg1=<")
    yield "exim-auth", fill("2026-11-26 10:20:00 ", "login authenticator failed for (x) [192.0.2.1]: 535 ")
    yield "exim-relay", fill("2026-11-26 10:20:00 1abcde-000001-AB => ", "a@b R=dnslookup T=remote_smtp H=x [192.0.2.1] A=")
    yield "qmail-chkuser", fill("@400000006527a1b60a1b2c3d CHKUSER relaying rcpt: from <a:b:> remote <", "x:y:192.0.2.1> rcpt <")
    yield "vchkpw", fill(s + "vpopmail[1]: vchkpw-smtp: password fail (pass: 'x') ", "user@dom:192.0.2.1 ")
    yield "courier", fill(s + "courierpop3login: LOGIN FAILED, user=", "x, ip=[::ffff:192.0.2.1], user=")
    yield "cyrus", fill(s + "imap[1]: badlogin: ", "x [192.0.2.1] plain [SASL(-13): ")
    yield "opensmtpd", fill(s + "smtpd[1]: 1a2b3c4d5e6f7a8b smtp authentication user=", "x result=permfail user=")
    yield "spamdyke", fill(s + "spamdyke[1]: DENIED_RELAYING from: ", "a@b to: c@d origin_ip: 192.0.2.1 origin_rdns: ")


with open(out, "w") as f:
    if case == "ipv4":
        for i in range(n):
            f.write(sasl_fail(i, v4(i), f"user{i % 50}@example.com"))
    elif case == "ipv6":
        for i in range(n):
            f.write(sasl_fail(i, v6(i), f"user{i % 50}@example.com"))
    elif case == "accounts":
        for i in range(n):
            f.write(sasl_fail(i, v4(i % 1000), f"invented{i}@example.com"))
    elif case == "queueids":
        for i in range(n):
            f.write(f"{stamp(i)} mx1 postfix/submission/smtpd[{1000 + i % 50000}]: {i:012X}: "
                    f"client=unknown[{v4(i % 1000)}], sasl_method=LOGIN, sasl_username=user{i % 5000}@example.com\n")
    elif case == "domains":
        f.write(f"{stamp(0)} mx1 postfix/submission/smtpd[4242]: 0000000000AA: client=unknown[{v4(7)}], "
                f"sasl_method=LOGIN, sasl_username=stolen@example.com\n")
        for i in range(n - 1):
            # A new message every 50 recipients, each joined to the account by its queue id.
            q = "%012X" % (0xAA + i // 50)
            if i % 50 == 0 and i:
                f.write(f"{stamp(i)} mx1 postfix/submission/smtpd[4242]: {q}: client=unknown[{v4(7)}], "
                        f"sasl_method=LOGIN, sasl_username=stolen@example.com\n")
            f.write(f"{stamp(i)} mx1 postfix/smtp[5000]: {q}: to=<info@d{i}.example>, relay=mx.d{i}.example[192.0.2.9]:25, "
                    f"delay=1, delays=0.1/0/0.4/0.5, dsn=2.0.0, status=sent (250 ok)\n")
    elif case == "crafted":
        lines = list(crafted_lines())
        which = sys.argv[4] if len(sys.argv) > 4 else ""
        chosen = [l for name, l in lines if not which or name == which]
        if not chosen:
            sys.exit("no crafted family named " + which + "; have: " + " ".join(name for name, _ in lines))
        for i in range(n):
            f.write(chosen[i % len(chosen)] + "\n")
    elif case == "list-crafted":
        for name, _ in crafted_lines():
            f.write(name + "\n")
    else:
        sys.exit("unknown case " + case)
