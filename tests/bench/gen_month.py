#!/usr/bin/env python3
"""A month of realistic Postfix submission traffic, with stolen accounts hidden in it.

usage: gen_month.py OUT.log TRUTH.json [--seed N] [--prior PRIOR.log]

Honest accounts (each with its own rhythm: working hours, a set of usual correspondents'
domains, home and office networks, weekends quieter), sales accounts that write to 40-80
customers' domains a day, roaming users who log in from several networks a day, a newsletter
that sends to thousands (an admin puts it on the allow-list), deferred mail retried, and
spam runs from stolen accounts: blasts, throttled runs rotating addresses, slow runs, and a
stolen sales account. TRUTH.json lists each account's role and, for stolen ones, when the
theft started, so month_bench.sh can say which were caught and after how many outside
recipients.

With --prior, PRIOR.log gets the four weeks before the month: the same accounts' honest
mail (no theft), for `relayban history-import`, so the month can be measured without a
warm-up. Its randomness is drawn apart (per account), so the month itself does not change.
"""
import datetime
import zlib
import json
import random
import sys

START = datetime.datetime(2026, 10, 15)
DAYS = 30
PRIOR_DAYS = 28
HOST = "mx1"


class Log:
    def __init__(self, rng=random, qid=0x10000):
        self.lines = []  # (time, text)
        self.qid = qid
        self.rng = rng

    def add(self, t, text):
        self.lines.append((t, text))

    def stamp(self, t):
        return t.strftime("%b %e %H:%M:%S")

    def message(self, t, account, ip, rcpts, deferred=0):
        """A submission: SASL login line, then one delivery line per recipient (and retries)."""
        self.qid += 1
        q = "%010X" % self.qid
        pid = self.rng.randint(1000, 60000)
        self.add(t, "%s postfix/submission/smtpd[%d]: %s: client=unknown[%s], sasl_method=PLAIN, sasl_username=%s"
                 % ("{S}", pid, q, ip, account))
        for i, r in enumerate(rcpts):
            d = t + datetime.timedelta(seconds=1 + i // 10)
            dom = r.split("@")[1]
            status = "deferred" if i < deferred else "sent"
            tail = "(host mx.%s said: 451 try again later)" % dom if status == "deferred" else "(250 ok)"
            self.add(d, "%s postfix/smtp[%d]: %s: to=<%s>, relay=mx.%s[192.0.2.200]:25, delay=1.2, "
                     "delays=0.1/0/0.5/0.6, dsn=%s, status=%s %s"
                     % ("{S}", pid + 1, q, r, dom, "4.0.0" if status == "deferred" else "2.0.0", status, tail))
            if status == "deferred":  # Postfix retries: the same recipient, later, until it goes
                for k, minutes in enumerate((5, 15, 45)):
                    rt = d + datetime.timedelta(minutes=minutes)
                    last = k == 2
                    self.add(rt, "%s postfix/smtp[%d]: %s: to=<%s>, relay=mx.%s[192.0.2.200]:25, delay=%d, "
                             "delays=0.1/0/0.5/0.6, dsn=%s, status=%s %s"
                             % ("{S}", pid + 2 + k, q, r, dom, minutes * 60, "2.0.0" if last else "4.0.0",
                                "sent" if last else "deferred", "(250 ok)" if last else tail))

    def write(self, path):
        self.lines.sort(key=lambda x: x[0])
        with open(path, "w") as f:
            for t, text in self.lines:
                f.write(text.replace("{S}", "%s %s" % (self.stamp(t), HOST), 1) + "\n")


def net(a, b, c):
    return "%d.%d.%d" % (a, b, c)


def main():
    out, truth_path = sys.argv[1], sys.argv[2]
    seed = int(sys.argv[sys.argv.index("--seed") + 1]) if "--seed" in sys.argv else 7
    random.seed(seed)
    log = Log()
    prior_path = sys.argv[sys.argv.index("--prior") + 1] if "--prior" in sys.argv else None
    prior = Log(random.Random(seed + 1000), qid=0x900000)
    truth = {}
    world = ["d%d.example" % i for i in range(20000)]

    def honest(name, per_day, contacts, networks, hours=(8, 18), weekend=0.2, roaming=False):
        mine = random.sample(world, contacts)
        truth[name] = {"role": "roaming" if roaming else "honest"}
        def days(rng, first, last, into):
            for day in range(first, last):
                date = START + datetime.timedelta(days=day)
                rate = per_day * (weekend if date.weekday() >= 5 else 1.0)
                n = max(0, int(rng.gauss(rate, rate / 3)))
                for _ in range(n):
                    t = date + datetime.timedelta(hours=rng.uniform(*hours))
                    if roaming:  # a phone on the move: a network for every few hours (mobile, hotel, home)
                        r = random.Random(zlib.crc32(("%s %d %d" % (name, day, t.hour // 4)).encode()))
                        ip = net(100, r.randint(64, 127), r.randint(0, 255)) + "." + str(r.randint(2, 250))
                    else:  # an office behind one NAT address, a home router
                        ip = rng.choice(networks)
                    k = rng.choice([1, 1, 1, 2, 3])
                    rcpts = ["%s@%s" % (rng.choice(["info", "j.doe", "sales", "anna"]), rng.choice(mine)) for _ in range(k)]
                    into.message(t, name, ip, rcpts, deferred=1 if rng.random() < 0.03 else 0)
        days(random, 0, DAYS, log)
        if prior_path:
            days(random.Random(zlib.crc32(("prior " + name).encode())), -PRIOR_DAYS, 0, prior)

    # 150 ordinary users: a handful of mails a day to their usual correspondents.
    for i in range(150):
        home = net(198, 51, random.randint(0, 255)) + ".%d" % random.randint(2, 250)
        office = "192.0.2.1"
        honest("user%03d@example.org" % i, random.uniform(1, 8), random.randint(5, 40), [office, office, home])
    # 10 sales accounts: 40-80 customers' domains a day from a big customer base.
    for i in range(10):
        honest("sales%02d@example.org" % i, random.uniform(25, 45), 3000, ["192.0.2.1"], weekend=0.05)
    # 10 roaming users: a different network for most logins.
    for i in range(10):
        honest("roam%02d@example.org" % i, random.uniform(2, 6), 20, [], hours=(6, 23), roaming=True)
    # A newsletter: 1,500 subscribers' domains once a week (allow-listed by the admin).
    subscribers = random.sample(world, 1500)
    truth["newsletter@example.org"] = {"role": "bulk (allow-listed)"}
    for week in range(DAYS // 7 + 1):
        t = START + datetime.timedelta(days=week * 7 + 1, hours=10)
        for j in range(0, 1500, 50):
            log.message(t + datetime.timedelta(seconds=j), "newsletter@example.org", "192.0.2.10",
                        ["news@%s" % d for d in subscribers[j:j + 50]])

    # Stolen accounts: each ordinary account below is honest first, then the spammer takes it.
    def spam(name, start_day, hours, per_hour, addresses, usual_per_day=3, role="stolen"):
        mine = random.sample(world, 20)
        start = START + datetime.timedelta(days=start_day, hours=random.randint(0, 12))
        truth[name] = {"role": role, "stolen_at": start.isoformat() + "Z", "per_hour": per_hour, "addresses": addresses}
        def own(rng, first, last, into):  # its owner's own mail, before and after
            for day in range(first, last):
                date = START + datetime.timedelta(days=day)
                for _ in range(max(0, int(rng.gauss(usual_per_day, 1)))):
                    t = date + datetime.timedelta(hours=rng.uniform(8, 18))
                    into.message(t, name, "192.0.2.1", ["x@" + rng.choice(mine)])
        own(random, 0, DAYS, log)
        if prior_path:
            own(random.Random(zlib.crc32(("prior " + name).encode())), -PRIOR_DAYS, 0, prior)
        targets = random.sample(world, int(hours * per_hour) + 10)
        bots = [net(random.randint(1, 90), random.randint(0, 255), random.randint(0, 255)) + ".%d" % random.randint(2, 250)
                for _ in range(addresses)]
        sent = 0
        for h in range(hours):
            for k in range(per_hour):
                t = start + datetime.timedelta(hours=h, seconds=random.randint(0, 3599))
                log.message(t, name, bots[(h * per_hour + k) % len(bots)], ["a@" + targets[sent]])
                sent += 1

    spam("user900@example.org", 9, 1, 400, 1, role="stolen: blast")
    spam("user901@example.org", 12, 48, 15, 3, role="stolen: throttled, 3 addresses")
    spam("user902@example.org", 15, 72, 8, 2, role="stolen: slow")
    spam("user903@example.org", 18, 96, 3, 1, role="stolen: trickle")
    spam("user904@example.org", 20, 48, 19, 5, role="stolen: just under relay-flood, 5 addresses")
    spam("sales90@example.org", 22, 48, 15, 2, usual_per_day=45, role="stolen sales account")
    spam("user905@example.org", 2, 48, 15, 2, role="stolen in the first week (history warming up)")
    log.write(out)
    if prior_path:
        prior.write(prior_path)
    json.dump(truth, open(truth_path, "w"), indent=1, sort_keys=True)


if __name__ == "__main__":
    main()
