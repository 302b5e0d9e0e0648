#!/usr/bin/env python3
"""Baseline for the benchmark: the PowerMTA accounting report that
`sluice report --format json FILE` prints, written the way a competent
operator would write it with the csv module.

Usage: bench/py_report.py FILE
"""
import csv
import functools
import json
import re
import sys
from collections import Counter, defaultdict

COUNTED = ("d", "b", "t", "tq")
FIELDS = ("rcpt", "queue", "dsnMta", "dsnDiag", "vmtaPool", "vmta", "dlvSourceIp")
TOP_TEXTS = 5
TEXT_PREFIX = 60

# Taxonomy of shared/domain.md section 3; the first matching pattern wins,
# ISP-specific patterns before those that hold for any ISP.
_I = re.IGNORECASE
ISP_PATTERNS = {
    "gmail": [
        (re.compile(r"421[ -]4\.7\.(0|28) .*unusual rate of unsolicited mail", _I), "reputation"),
        (re.compile(r"421[ -]4\.7\.0 .*Try again later, closing connection", _I), "connection"),
        (re.compile(r"450[ -]4\.2\.1 .*receiving mail (too quickly|at a rate)", _I), "recipient"),
    ],
    "outlook": [
        (re.compile(r"421 RP-001|451 4\.7\.65[01]", _I), "reputation"),
        (re.compile(r"421 RP-002", _I), "rate"),
        (re.compile(r"421 RP-003|451 4\.7\.652", _I), "connection"),
    ],
    "yahoo": [
        (re.compile(r"421 4\.7\.0 \[(TSS0[45]|IPTS0[45]|TS0[1-3])\]", _I), "reputation"),
    ],
    "gmx": [
        (re.compile(r"421.*Too many connections", _I), "connection"),
    ],
    "orange": [
        (re.compile(r"OFR004_104|Trop de connexions", _I), "connection"),
        (re.compile(r"OFR004_105|OFR_999|Service refus", _I), "reputation"),
    ],
    "generic": [],
}
ANY_PATTERNS = [
    (re.compile(r"452[ -]4\.2\.2|over quota|mailbox (is )?full", _I), "recipient"),
    (re.compile(r"TLS (is )?required|STARTTLS|\bDNS\b|could not resolve|"
                r"\bauth(entication)? (fail|requir)|unauthenticated", _I), "config"),
]

# (ISP, exact domains, first labels meaning "any TLD", MX host suffixes)
ISPS = [
    ("gmail", {"gmail.com", "googlemail.com"}, set(), (".google.com",)),
    ("outlook", {"outlook.com", "msn.com"}, {"hotmail", "live"}, (".protection.outlook.com",)),
    ("yahoo", {"ymail.com", "aol.com"}, {"yahoo"}, (".yahoodns.net",)),
    ("gmx", {"web.de"}, {"gmx"}, (".gmx.net", ".web.de")),
    ("orange", {"orange.fr", "wanadoo.fr"}, set(), (".orange.fr",)),
]


@functools.lru_cache(maxsize=None)
def isp_of_domain(domain):
    domain = domain.lower()
    label = domain.split(".", 1)[0]
    for isp, domains, labels, _ in ISPS:
        if domain in domains or ("." in domain and label in labels):
            return isp
    return None


@functools.lru_cache(maxsize=None)
def isp_of_mx(dsn_mta):
    host = dsn_mta.split(" ", 1)[0].lower().rstrip(".")
    for isp, _, _, suffixes in ISPS:
        if host.endswith(suffixes):
            return isp
    return "generic"


def isp_of(rcpt, queue, dsn_mta):
    """The recipient's domain (the queue's for tq records); a domain the catalog does not
    know is judged by its MX host (Google-hosted domains are gmail)."""
    domain = rcpt.rpartition("@")[2] if "@" in rcpt else queue.split("/", 1)[0]
    return (isp_of_domain(domain) if domain else None) or isp_of_mx(dsn_mta)


def deferral_class(isp, diag):
    for pattern, cls in ISP_PATTERNS[isp] + ANY_PATTERNS:
        if pattern.search(diag):
            return cls
    return "other"


def rate(deferred, attempts):
    return round(deferred / attempts, 4) if attempts else 0.0


def counts_json(c):
    attempts = c["d"] + c["b"] + c["t"] + c["tq"]
    return {
        "attempts": attempts,
        "delivered": c["d"],
        "bounced": c["b"],
        "deferred": c["t"],
        "deferred_queue": c["tq"],
        "deferral_rate": rate(c["t"] + c["tq"], attempts),
    }


def main(path):
    totals = Counter()
    malformed = 0
    by_isp = defaultdict(Counter)
    by_pool = defaultdict(Counter)                  # (pool, isp) -> counts
    by_ip = defaultdict(lambda: defaultdict(Counter))  # (pool, isp) -> ip -> counts
    texts = defaultdict(Counter)                    # isp -> text prefix -> count
    text_class = {}                                 # (isp, prefix) -> class
    classes = defaultdict(Counter)                  # isp -> class -> count

    ncols, type_i, fields = -1, 0, ()   # no header seen yet: every row is malformed
    with open(path, newline="", encoding="utf-8-sig", errors="replace") as f:
        for row in csv.reader(f):
            if not row:
                continue
            if len(row) == ncols and row[type_i] in COUNTED:
                typ = row[type_i]
            else:
                row[0] = row[0].lstrip("\ufeff")
                if "type" in row:  # a (repeated) header line
                    col = {name: i for i, name in enumerate(row)}
                    ncols, type_i = len(row), col["type"]
                    fields = [col.get(name) for name in FIELDS]
                elif len(row) != ncols:
                    malformed += 1
                continue

            rcpt, queue, dsn_mta, diag, pool, vmta, ip = (
                row[i] if i is not None else "" for i in fields)
            isp = isp_of(rcpt, queue, dsn_mta)
            pool_key = (pool or vmta, isp)
            totals[typ] += 1
            by_isp[isp][typ] += 1
            by_pool[pool_key][typ] += 1
            ip_counts = by_ip[pool_key][ip]
            ip_counts["attempts"] += 1
            if typ in ("t", "tq"):
                ip_counts["deferred"] += 1
                cls = deferral_class(isp, diag)
                classes[isp][cls] += 1
                prefix = diag.removeprefix("smtp;").lstrip(" ")[:TEXT_PREFIX]
                texts[isp][prefix] += 1
                text_class[isp, prefix] = cls

    isps = {}
    for isp, c in sorted(by_isp.items()):
        top = sorted(texts[isp].items(), key=lambda kv: (-kv[1], kv[0]))[:TOP_TEXTS]
        isps[isp] = counts_json(c)
        isps[isp]["deferrals_by_class"] = dict(classes[isp])
        isps[isp]["top_deferrals"] = [
            {"text": text, "count": n, "class": text_class[isp, text]} for text, n in top]

    pools = []
    for (pool, isp), c in sorted(by_pool.items()):
        entry = {"pool": pool, "isp": isp, **counts_json(c)}
        entry["source_ips"] = {
            ip: {"attempts": n["attempts"], "deferred": n["deferred"],
                 "deferral_rate": rate(n["deferred"], n["attempts"])}
            for ip, n in sorted(by_ip[pool, isp].items())}
        pools.append(entry)

    report = {
        "totals": {
            "delivered": totals["d"],
            "bounced": totals["b"],
            "deferred": totals["t"],
            "deferred_queue": totals["tq"],
            "malformed": malformed,
        },
        "isps": isps,
        "pools": pools,
    }
    json.dump(report, sys.stdout, indent=2)
    print()


if __name__ == "__main__":
    if len(sys.argv) != 2:
        sys.exit("usage: py_report.py FILE")
    main(sys.argv[1])
