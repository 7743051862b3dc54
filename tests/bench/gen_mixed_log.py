#!/usr/bin/env python3
"""Writes a mixed mail log for benchmarks: Postfix and Dovecot in classic syslog format,
about 90 % benign traffic (connections, deliveries, logins) and 10 % abuse (SASL failures,
relay attempts, a stolen account relaying). Deterministic.

usage: gen_mixed_log.py LINES OUTPUT
"""
import random
import sys
import time

n = int(sys.argv[1])
out = sys.argv[2]
rng = random.Random(42)
t = 1795688400  # 2026-11-26 10:20:00 UTC


def ip():
    return "%d.%d.%d.%d" % (rng.randint(1, 223), rng.randint(0, 255), rng.randint(0, 255), rng.randint(1, 254))


def stamp():
    return time.strftime("%b %e %H:%M:%S", time.gmtime(t))


benign = [
    lambda q, c: f"postfix/smtpd[{rng.randint(1000, 60000)}]: connect from unknown[{c}]",
    lambda q, c: f"postfix/smtpd[{rng.randint(1000, 60000)}]: disconnect from unknown[{c}] ehlo=1 mail=1 rcpt=1 data=1 quit=1 commands=5",
    lambda q, c: f"postfix/smtpd[{rng.randint(1000, 60000)}]: {q}: client=mail{rng.randint(1, 999)}.example.net[{c}]",
    lambda q, c: f"postfix/cleanup[{rng.randint(1000, 60000)}]: {q}: message-id=<{rng.randint(1, 1 << 40)}@example.net>",
    lambda q, c: f"postfix/qmgr[900]: {q}: from=<news{rng.randint(1, 999)}@example.net>, size={rng.randint(500, 90000)}, nrcpt=1 (queue active)",
    lambda q, c: f"postfix/lmtp[{rng.randint(1000, 60000)}]: {q}: to=<user{rng.randint(1, 5000)}@example.com>, relay=mail.example.com[private/dovecot-lmtp], delay=0.2, delays=0.1/0/0/0.1, dsn=2.0.0, status=sent (250 2.0.0 Saved)",
    lambda q, c: f"postfix/qmgr[900]: {q}: removed",
    lambda q, c: login(rng.randint(1, 5000)),
    lambda q, c: f"dovecot: imap(user{rng.randint(1, 5000)}@example.com)<{rng.randint(1000, 60000)}><AbCdEfGh>: Logged out in=123 out=4567 deleted=0 expunged=0 trashed=0 hdr_count=0 hdr_bytes=0 body_count=0 body_bytes=0",
    lambda q, c: f"postfix/anvil[{rng.randint(1000, 60000)}]: statistics: max connection rate 1/60s for (smtp:{c}) at Nov 26 10:00:00",
]
attackers = [ip() for _ in range(300)]
abuse = [
    lambda q, c: f"postfix/submission/smtpd[{rng.randint(1000, 60000)}]: warning: unknown[{rng.choice(attackers)}]: SASL LOGIN authentication failed: authentication failure, sasl_username=user{rng.randint(1, 50)}@example.com",
    lambda q, c: f"dovecot: imap-login: Disconnected (auth failed, 1 attempts in 2 secs): user=<admin{rng.randint(1, 50)}>, method=PLAIN, rip={rng.choice(attackers)}, lip=192.0.2.10, TLS, session=<XyZ{rng.randint(1000, 9999)}>",
    lambda q, c: f"postfix/smtpd[{rng.randint(1000, 60000)}]: NOQUEUE: reject: RCPT from unknown[{rng.choice(attackers)}]: 454 4.7.1 <v{rng.randint(1, 999)}@gmail.com>: Relay access denied; from=<s@spam.example> to=<v@gmail.com> proto=ESMTP helo=<x>",
    lambda q, c: f"postfix/smtp[{rng.randint(1000, 60000)}]: {q}: to=<r{rng.randint(1, 99999)}@d{rng.randint(1, 9999)}.example>, relay=mx.example[192.0.2.200]:25, delay=1, delays=0.1/0/0.4/0.5, dsn=2.0.0, status=sent (250 ok)",
]
clients = [ip() for _ in range(20000)]


def login(u):
    # Users log in from their own one or two addresses, as real users do.
    return (f"dovecot: imap-login: Login: user=<user{u}@example.com>, method=PLAIN, rip={clients[(u * 2 + rng.randint(0, 1)) % len(clients)]}, "
            f"lip=192.0.2.10, mpid={rng.randint(1000, 60000)}, TLS, session=<AbCdEfGh{rng.randint(1000, 9999)}>")

with open(out, "w") as f:
    for i in range(n):
        if i % 50 == 0:
            t += 1
        q = "%010X" % rng.randint(1, 1 << 40)
        c = rng.choice(clients)
        fn = rng.choice(abuse) if rng.random() < 0.10 else rng.choice(benign)
        f.write(f"{stamp()} mx1 {fn(q, c)}\n")
