#!/usr/bin/env python3
"""Ratio table of the first server against each other one, from the lab's bench.sh output.

    bench/ratios.py DIR LABEL [LABEL...]
    bench/ratios.py --targets REPORT_DIR      # issue-5 targets from a bench/all.sh run

DIR/<LABEL>/summary.jsonl is what the lab's bench.sh wrote for that server (one JSON object
per run). For every mode and concurrency of the first label, prints one row per other label:
req/s, CPU ms/req and peak RSS of the first divided by the other's ("x req/s" above 1 and the
other two below 1 are better for the first), the worse "others cores" of the two runs (above
~0.3 means a noisy pair: rerun before trusting it) and the errors of both.
"""
import json
import sys
from pathlib import Path


def load(path):
    runs = {}
    if path.exists():
        for line in path.read_text().splitlines():
            if line.strip():
                r = json.loads(line)
                runs[(r.get("mode"), r.get("conc"))] = r
    return runs


def ratio(a, b):
    if a is None or b is None or not b:
        return "–"
    return f"{a / b:.2f}"


def errors(r):
    n = sum(r.get(k, 0) or 0 for k in ("err_status", "err_timeout", "err_connect", "err_read", "err_write"))
    return n + (r.get("bad_responses", 0) or 0)


def rps_ratios(d, ref, other, mode="cold"):
    """[(conc, ref/other req/s, worse others cores)] for the runs both have."""
    a, b = load(d / ref / "summary.jsonl"), load(d / other / "summary.jsonl")
    out = []
    for key in sorted(k for k in a if k[0] == mode and k in b):
        if b[key].get("rps"):
            noisy = max(a[key].get("others_cores") or 0, b[key].get("others_cores") or 0)
            out.append((key[1], a[key]["rps"] / b[key]["rps"], noisy))
    return out


def rss_ratios(d, ref, other):
    a, b = load(d / ref / "summary.jsonl"), load(d / other / "summary.jsonl")
    return [
        (k[1], a[k]["rss_peak_sum_mb"] / b[k]["rss_peak_sum_mb"], max(a[k].get("others_cores") or 0, b[k].get("others_cores") or 0))
        for k in sorted(k for k in a if k in b and b[k].get("rss_peak_sum_mb"))
    ]


def targets(root):
    """One row per issue-5 target: the measured ratios (worst first) and whether it is met."""
    rows = []

    def add(target, goal, found, better_high=True):
        if not found:
            rows.append((target, goal, "not measured", "–"))
            return
        vals = [v for _, v, _ in found]
        worst = min(vals) if better_high else max(vals)
        bound = float(goal.split()[-1].rstrip("x"))
        met = worst >= bound if better_high else worst <= bound
        detail = ", ".join(f"{w} {v:.2f}" + (" (noisy)" if n > 0.3 else "") for w, v, n in found)
        rows.append((target, goal, detail, "yes" if met else "**no**"))

    for job in ("jpeg300", "webp1200"):
        d = root / f"cold-{job}"
        add(f"cold {job}: req/s vs IPX", ">= 1.5x", [(f"c={c}", v, n) for c, v, n in rps_ratios(d, "imgcdn", "ipx")])
        add(f"cold {job}: req/s vs thumbor 2 procs", ">= 2x", [(f"c={c}", v, n) for c, v, n in rps_ratios(d, "imgcdn", "thumbor-2proc")])
    prog = []
    for d in sorted(root.glob("prog-*")):
        prog += [(f"{d.name[5:]} c={c}", v, n) for c, v, n in rps_ratios(d, "imgcdn", "ipx")]
    add("progressive -> 300 px: req/s vs IPX", ">= 3x", prog)
    floor = []
    bench = root / "floor" / "table.md"
    if bench.exists():
        for line in bench.read_text().splitlines():
            cells = [c.strip() for c in line.strip().strip("|").split("|")]
            if len(cells) == 14 and cells[-1] not in ("–", "CPU pipeline / floor") and not cells[-1].startswith("-"):
                floor.append((f"{cells[1]} {cells[0]}", float(cells[-1]), 0))
    add("pipeline CPU per job vs libjpeg-turbo floor (in-process)", "<= 1.2x", floor, better_high=False)
    hits = root / "hits" / "results.tsv"
    if hits.exists():
        rps, p99 = {}, []
        for line in hits.read_text().splitlines():
            f = line.split("\t")
            rps.setdefault(f[1], []).append(float(f[2]))
            if f[1] == "imgcdn":
                p99.append((f"round {f[0]}", float(f[4]), float(f[7])))
        mean = lambda v: sum(v) / len(v)
        add("cache hits: req/s vs nginx static", ">= 0.9x", [("mean of 2 rounds", mean(rps["imgcdn"]) / mean(rps["nginx"]), 0)])
        add("cache hits: imgcdn p99 ms", "< 2", p99, better_high=False)
    else:
        add("cache hits: req/s vs nginx static", ">= 0.9x", [])
    storm = []
    for d in sorted(root.glob("storm-*")):
        storm += [(f"{d.name[6:]} c={c}", v, n) for c, v, n in rss_ratios(d, "imgcdn", "ipx")]
    add("cold storm: peak RSS vs IPX", "<= 0.5x", storm, better_high=False)
    storm = []
    for d in sorted(root.glob("storm-*")):
        storm += [(f"{d.name[6:]} c={c}", v, n) for c, v, n in rss_ratios(d, "imgcdn-nocache", "ipx")]
    if storm:
        add("(cold storm: peak RSS vs IPX, imgcdn cache tiers off)", "<= 0.5x", storm, better_high=False)

    print("| target | goal | measured (imgcdn / peer) | met |")
    print("|---|---|---|---|")
    for r in rows:
        print("| " + " | ".join(r) + " |")


def main():
    if len(sys.argv) == 3 and sys.argv[1] == "--targets":
        targets(Path(sys.argv[2]))
        return
    if len(sys.argv) < 3:
        sys.exit(__doc__)
    base_dir, labels = Path(sys.argv[1]), sys.argv[2:]
    ref, others = labels[0], labels[1:]
    ref_runs = load(base_dir / ref / "summary.jsonl")
    if not ref_runs or not others:
        print(f"(no ratios: need {ref} and at least one other server with results)")
        return
    print(f"| mode | conc | {ref} vs | x req/s | x CPU ms/req | x peak RSS | others cores (max) | errors ({ref} / peer) |")
    print("|---|---|---|---:|---:|---:|---:|---|")
    for key in sorted(ref_runs, key=lambda k: (k[0] != "cold", k[1])):
        a = ref_runs[key]
        for other in others:
            b = load(base_dir / other / "summary.jsonl").get(key)
            if b is None:
                print(f"| {key[0]} | {key[1]} | {other} | – | – | – | – | no run |")
                continue
            noisy = max(a.get("others_cores", 0) or 0, b.get("others_cores", 0) or 0)
            print(
                f"| {key[0]} | {key[1]} | {other} | {ratio(a.get('rps'), b.get('rps'))} "
                f"| {ratio(a.get('server_cpu_ms_per_req'), b.get('server_cpu_ms_per_req'))} "
                f"| {ratio(a.get('rss_peak_sum_mb'), b.get('rss_peak_sum_mb'))} "
                f"| {noisy:.2f} | {errors(a)} / {errors(b)} |"
            )


if __name__ == "__main__":
    main()
