#!/usr/bin/env python3
"""Writes the replay stories used by the tests and the demo (deterministic).

qmail-story.log         multilog (TAI64N) log of qmail-smtpd with chkuser: account `test`
                        relays from 82.128.32.42 to hundreds of outside domains, later also
                        from 41.203.7.99; alice relays a few mails; 203.0.113.5 probes relaying.
qmail-story-syslog.log  vpopmail's vchkpw lines for the same hour (syslog): test logs in from
                        82.128.32.42, 203.0.113.40 guesses passwords.
postfix-stolen-account.log  a stolen submission account (sales@example.com) used from three
                        addresses, recipients on later smtp lines joined by queue id; bob sends
                        two ordinary mails; 203.0.113.66 guesses passwords.
"""
import os
import random

HERE = os.path.dirname(os.path.abspath(__file__))
BASE = 1795688400  # 2026-11-26 10:20:00 UTC; syslog lines take the year from "now"
rng = random.Random(20251126)

TLDS = ["com", "net", "org", "de", "it", "fr", "co.uk", "com.br", "ru", "cn", "jp", "nl", "pl", "es", "in"]
WORDS = ["mail", "post", "box", "web", "net", "cloud", "online", "home", "info", "shop", "free", "fast",
         "star", "blue", "sun", "city", "tech", "media", "group", "world"]


def domain(i):
    return f"{WORDS[i % len(WORDS)]}{WORDS[(i // len(WORDS)) % len(WORDS)]}{i}.{TLDS[i % len(TLDS)]}"


def tai(t, n=0):
    secs = int(t)
    nanos = int(round((t - secs) * 1e9)) + n
    return "@%016x%08x" % ((1 << 62) + 10 + secs, nanos)


def syslog(t):
    import time
    return time.strftime("%b %e %H:%M:%S", time.gmtime(t))


def qmail():
    lines = []
    t = BASE

    def add(text, dt=0.05):
        nonlocal t
        t += dt
        lines.append(f"{tai(t)} {text}")

    def session(pid, ip, helo, sender, account, rcpts, host="unknown"):
        add(f"tcpserver: pid {pid} from {ip}")
        add(f"tcpserver: ok {pid} mail.example.com:192.0.2.10:587 {host}:{ip}::{40000 + pid % 20000}")
        add(f"CHKUSER accepted sender: from <{sender}:{account}:> remote <{helo}:{host}:{ip}> rcpt <> : sender accepted")
        for r in rcpts:
            if r.endswith("@example.com"):
                add(f"CHKUSER accepted rcpt: from <{sender}:{account}:> remote <{helo}:{host}:{ip}> rcpt <{r}> : found existing recipient")
            else:
                add(f"CHKUSER relaying rcpt: from <{sender}:{account}:> remote <{helo}:{host}:{ip}> rcpt <{r}> : client allowed to relay")
        add(f"tcpserver: end {pid} status 0")

    add("tcpserver: status: 1/100")
    # An ordinary user: three mails, two outside domains, one colleague.
    session(12001, "192.0.2.140", "alice-laptop", "alice@example.com", "alice@example.com",
            ["bob@example.com", "partner@supplier.example"], host="dsl-140.example.net")
    # The stolen account: sessions of 20 recipients each, all different domains.
    n = 0
    for s in range(15):
        rcpts = []
        for k in range(20):
            rcpts.append(f"{rng.choice(['info','sales','j.doe','m.rossi','lee','kim','admin'])}{n}@{domain(n)}")
            n += 1
        session(12100 + s, "82.128.32.42", "User", "kbradford@philadefender.org", "test", rcpts)
        add(f"CHKUSER intrusion threshold: from <kbradford@philadefender.org:test:> remote <User:unknown:82.128.32.42> rcpt <x{s}@aol.com> : max number of allowed rcpt", 0.01)
        t += 60
    session(12002, "192.0.2.140", "alice-laptop", "alice@example.com", "alice@example.com",
            ["partner@supplier.example", "friend@other.example"], host="dsl-140.example.net")
    # Relay probing from an unauthenticated client.
    for k in range(3):
        add("tcpserver: pid %d from 203.0.113.5" % (12400 + k))
        add(f"CHKUSER rejected relaying: from <spam@spammer.example::> remote <pc01:unknown:203.0.113.5> rcpt <victim{k}@gmail.com> : client not allowed to relay")
    # The same stolen account from a second address, after the verdict.
    t += 600
    session(12500, "41.203.7.99", "User", "kbradford@philadefender.org", "test",
            ["first@late.example", "second@late2.example"])
    return lines


def qmail_syslog():
    lines = []
    lines.append(f"{syslog(BASE + 1)} mx1 vpopmail[20007]: vchkpw-submission: (PLAIN) login success test@example.com:82.128.32.42")
    lines.append(f"{syslog(BASE + 2)} mx1 vpopmail[20008]: vchkpw-submission: (PLAIN) login success alice@example.com:192.0.2.140")
    for k, user in enumerate(["test", "info", "admin", "postmaster", "sales", "office"]):
        lines.append(f"{syslog(BASE + 30 + k * 20)} mx1 vpopmail[{20100 + k}]: vchkpw-smtp: password fail {user}@example.com:203.0.113.40")
    return lines


def postfix():
    lines = []
    t = BASE
    qid = 0x4A1B2C3D00

    def add(text, dt=1):
        nonlocal t
        t += dt
        lines.append(f"{syslog(t)} mx1 {text}")

    def message(ip, account, sender, rcpts, svc="submission"):
        nonlocal qid
        qid += 1
        q = "%X" % qid
        pid = 23000 + qid % 1000
        add(f"postfix/{svc}/smtpd[{pid}]: connect from unknown[{ip}]")
        if account:
            add(f"postfix/{svc}/smtpd[{pid}]: {q}: client=unknown[{ip}], sasl_method=LOGIN, sasl_username={account}")
        else:
            add(f"postfix/smtpd[{pid}]: {q}: client=mx.shop.example[{ip}]")
        add(f"postfix/qmgr[900]: {q}: from=<{sender}>, size=2311, nrcpt={len(rcpts)} (queue active)")
        for r in rcpts:
            if r.endswith("@example.com"):
                add(f"postfix/lmtp[23110]: {q}: to=<{r}>, relay=mail.example.com[private/dovecot-lmtp], delay=0.2, delays=0.1/0/0/0.1, dsn=2.0.0, status=sent (250 2.0.0 Saved)", 0)
            else:
                add(f"postfix/smtp[{pid + 7}]: {q}: to=<{r}>, relay=mx.{r.split('@')[1]}[192.0.2.200]:25, delay=1.1, delays=0.1/0.01/0.4/0.6, dsn=2.0.0, status=sent (250 ok)", 0)
        add(f"postfix/qmgr[900]: {q}: removed")
        add(f"postfix/{svc}/smtpd[{pid}]: disconnect from unknown[{ip}] ehlo=1 auth=1 mail=1 rcpt={len(rcpts)} data=1 quit=1 commands=5", 0)

    message("192.0.2.55", "bob@example.com", "bob@example.com", ["kim@example.com", "a@partner.example"])
    # Password guessing before the theft.
    for k, user in enumerate(["alice", "bob", "carol", "dave", "erin", "frank"]):
        add(f"postfix/submission/smtpd[{21000 + k}]: warning: unknown[203.0.113.66]: SASL LOGIN authentication failed: authentication failure, sasl_username={user}@example.com")
    # The stolen account, from three addresses of a botnet, ten outside domains per message.
    n = 0
    for ip in ["198.51.100.23", "2001:db8:bad::7", "203.0.113.150", "198.51.100.23", "203.0.113.150"]:
        rcpts = []
        for k in range(10):
            rcpts.append(f"user{n}@{domain(n)}")
            n += 1
        message(ip, "sales@example.com", "kbradford@philadefender.org", rcpts,
                svc="smtps" if ":" in ip else "submission")
        t += 120
    # Inbound mail forwarded to an outside address: no account, never charged.
    message("192.0.2.90", None, "news@shop.example", [f"fwd{k}@{domain(500 + k)}" for k in range(30)], svc="smtpd")
    message("192.0.2.55", "bob@example.com", "bob@example.com", ["b@partner.example"])
    return lines


def write(name, lines):
    with open(os.path.join(HERE, name), "w") as f:
        f.write("\n".join(lines) + "\n")


if __name__ == "__main__":
    write("qmail-story.log", qmail())
    write("qmail-story-syslog.log", qmail_syslog())
    write("postfix-stolen-account.log", postfix())
