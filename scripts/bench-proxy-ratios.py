#!/usr/bin/env python3
"""The figures of issue 19 for finished peer-kit runs: route P against hudsucker (B2) and the bare
tunnel (B1t) measured in the same run, one row per run and the medians over all runs.

  scripts/bench-proxy-ratios.py KIT_DIR RUN_DIR...

(b) max req/s ×B2, (b) proxy CPU µs per request ×B1t (lower is better), (d) upload MiB/s ×B2 and
×B1t, (e) download MiB/s ×B2 and ×B1t, plus P's peak RSS (VmHWM, printed by bench_proxy into
P.log at exit). It reads the kit's own parsers (report.py), so the figures are the kit's.
"""
import os
import re
import statistics
import sys


def main(argv):
    if len(argv) < 3:
        print(__doc__, file=sys.stderr)
        return 2
    sys.path.insert(0, argv[1])
    import report  # the kit's parsers

    def cpu_us(run, meta, route):
        oha = report.load_oha(os.path.join(run, f"{route}-b.json"))
        ticks = meta.get(route, {}).get("b_cpu_ticks")
        if oha is None or ticks is None or not oha["ok"]:
            return None
        return int(ticks) * 1e6 / report.CLK_TCK / oha["ok"]

    def rps(run, route):
        oha = report.load_oha(os.path.join(run, f"{route}-b.json"))
        return oha["rps"] if oha else None

    def mibs(run, route, test):
        result = report.load_upload(run, route, test)
        return result["mibs"] if result else None

    def div(a, b):
        return a / b if a is not None and b else None

    def peak_rss(run):
        try:
            text = open(os.path.join(run, "P.log")).read()
        except OSError:
            return None
        found = re.findall(r"VmHWM:\s+(\d+) kB", text)
        return int(found[-1]) / 1024 if found else None

    columns = [
        ("(b) req/s ×B2", lambda r, m: div(rps(r, "P"), rps(r, "B2"))),
        ("(b) CPU/req ×B1t", lambda r, m: div(cpu_us(r, m, "P"), cpu_us(r, m, "B1t"))),
        ("(d) up ×B2", lambda r, m: div(mibs(r, "P", "d"), mibs(r, "B2", "d"))),
        ("(d) up ×B1t", lambda r, m: div(mibs(r, "P", "d"), mibs(r, "B1t", "d"))),
        ("(e) down ×B2", lambda r, m: div(mibs(r, "P", "e"), mibs(r, "B2", "e"))),
        ("(e) down ×B1t", lambda r, m: div(mibs(r, "P", "e"), mibs(r, "B1t", "e"))),
        ("P CPU µs/req", lambda r, m: cpu_us(r, m, "P")),
        ("B1t CPU µs/req", lambda r, m: cpu_us(r, m, "B1t")),
        ("P VmHWM MiB", lambda r, m: peak_rss(r)),
    ]
    fmt = lambda v: "–" if v is None else f"{v:.2f}"  # noqa: E731
    print("| run | " + " | ".join(name for name, _ in columns) + " |")
    print("|---" * (len(columns) + 1) + "|")
    values = [[] for _ in columns]
    for run in argv[2:]:
        meta = report.read_tsv(run)
        row = []
        for i, (_, figure) in enumerate(columns):
            v = figure(run, meta)
            if v is not None:
                values[i].append(v)
            row.append(fmt(v))
        print(f"| {os.path.basename(run.rstrip('/'))} | " + " | ".join(row) + " |")
    medians = [fmt(statistics.median(v)) if v else "–" for v in values]
    print(f"| **median of {len(argv) - 2}** | " + " | ".join(medians) + " |")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
