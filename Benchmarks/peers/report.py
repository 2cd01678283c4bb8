#!/usr/bin/env python3
"""Merges one run of the ANN comparison into the files the README quotes.

    python3 Benchmarks/peers/report.py [--results-dir Benchmarks/results] [--readme Benchmarks/README.md]

Reads, per dataset, `nearest-bench hnsw`'s results/hnsw-<dataset>.json (swift-nearest and the
flat BLAS baseline) and hnsw_peers.py's results/hnsw-peers-<dataset>.json (hnswlib, FAISS,
USearch), and writes:

* results/ann-<dataset>.json: every system's builds and sweep, and queries/s, latency and
  distance computations interpolated at recall@10 = 0.90, 0.95, 0.99 (hnsw_peers.at_recall);
* results/ann-<dataset>.png: recall@10 (logit axis, as ann-benchmarks draws it) against queries/s
  (log axis), one thread one query at a time on the left, a batch on all threads on the right,
  every system on one chart, the flat baseline as a dashed line;
* results/ann.md: the tables, and results/kernels.md's table when run.sh made one;
* the part of the README between `<!-- ann:begin -->` and `<!-- ann:end -->`: the tables,
  the plots, the machine, the library versions, the command, and swift-nearest's ratio to the
  best peer (single-thread queries/s) at recall 0.90, 0.95 and 0.99.
"""

import argparse
import glob
import json
import os
import subprocess
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
from hnsw_peers import BENCHMARKS, REPOSITORY, TARGETS, at_recall, write_json  # noqa: E402

OURS = "swift-nearest"
KEYS = ("qps_batch", "qps_loop", "qps_parallel", "latency_p50_us", "latency_p99_us", "distance_computations")
STYLE = {OURS: ("#d62728", "o"), "hnswlib": ("#1f77b4", "s"), "faiss": ("#2ca02c", "^"), "usearch": ("#9467bd", "D")}
LABEL = {OURS: "swift-nearest", "hnswlib": "hnswlib", "faiss": "FAISS HNSWFlat", "usearch": "USearch"}


def load(path):
    with open(path) as f:
        return json.load(f)


def merge(ours, peers):
    """One dataset's systems: swift-nearest from nearest-bench, the peers from hnsw_peers.py."""
    runs = [{"library": OURS, "builds": ours["builds"], "sweep": ours["sweep"],
             "parameters": {"M": ours["m"], "ef_construction": ours["ef_construction"],
                            "swept_index_threads": ours["swept_index_threads"]}}]
    runs += [r for r in peers["runs"] if r["library"] != OURS and "sweep" in r]
    for run in runs:
        run["at_recall"] = {key: at_recall(run["sweep"], key) for key in KEYS if all(key in p for p in run["sweep"])}
    return {"benchmark": "ann", "dataset": ours["dataset"], "M": ours["m"], "ef_construction": ours["ef_construction"],
            "k": ours["k"], "ef": ours["ef"], "flat": ours["flat"], "runs": runs,
            "machine": {"swift_nearest": ours["machine"], "peers": peers["machine"]},
            "timing": {"swift_nearest": ours["timing"], "peers": peers["timing"]},
            "commands": {"swift_nearest": ours["command"], "peers": peers["command"]}}


def value(run, key, target):
    """The interpolated value at `target`; None where the sweep does not bracket it."""
    entry = run["at_recall"].get(key, {}).get(f"{target:.2f}")
    return None if entry is None or entry["at_first_ef"] else entry["value"]


def cell(run, key, target, digits=0, bound="≥"):
    """Like value(), but 'bound v' where the smallest ef already exceeds the target: ef = 10's
    figure, a lower bound for queries/s (≥), an upper one for latency and distances (≤)."""
    entry = run["at_recall"].get(key, {}).get(f"{target:.2f}")
    if entry is None:
        return "–"
    return (bound if entry["at_first_ef"] else "") + f"{entry['value']:,.{digits}f}"


def ratio(merged, target, key="qps_batch"):
    """swift-nearest ÷ the best peer at `target` recall, and that peer; None where one is missing."""
    ours = next(r for r in merged["runs"] if r["library"] == OURS)
    mine = value(ours, key, target)
    peers = [(value(r, key, target), r["library"]) for r in merged["runs"] if r["library"] != OURS]
    peers = [(v, name) for v, name in peers if v is not None]
    if mine is None or not peers:
        return None, None
    best, name = max(peers)
    return mine / best, name


def fmt(v, digits=0, suffix=""):
    return "–" if v is None else f"{v:,.{digits}f}{suffix}"


def build(run, threads):
    return next((b for b in run["builds"] if b["threads"] == threads), None)


def dataset_markdown(merged):
    d = merged["dataset"]
    lines = [f"### {d['name']} ({d['base']:,} × {d['dimensions']}, {d['queries']:,} queries, {d['metric']}; "
             f"M = {merged['M']}, efConstruction = {merged['ef_construction']}, k = {merged['k']})", "",
             "| system | q/s @0.90 | q/s @0.95 | q/s @0.99 | 2-thread q/s @0.95 | p50 / p99 µs @0.95 | dist/q @0.95 | "
             "build 1T s | build 2T s | 2T vectors/s | peak RSS +MiB (2T) | bytes/vector |",
             "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|"]
    for run in merged["runs"]:
        one, two = build(run, 1), build(run, 2)
        p50, p99 = cell(run, "latency_p50_us", 0.95, 1, "≤"), cell(run, "latency_p99_us", 0.95, 1, "≤")
        rss = two.get("peak_rss_increase_bytes") if two else None
        cells = [cell(run, "qps_batch", t) for t in TARGETS]
        name = f"**{LABEL[run['library']]}**" if run["library"] == OURS else LABEL[run["library"]]
        lines.append(f"| {name} | " + " | ".join(cells) + f" | {cell(run, 'qps_parallel', 0.95)} | "
                     f"{p50} / {p99} | {cell(run, 'distance_computations', 0.95, 0, '≤')} | "
                     f"{fmt(one and one['seconds'], 2)} | {fmt(two and two['seconds'], 2)} | "
                     f"{fmt(two and two['vectors_per_second'])} | {fmt(rss and rss / 2**20, 1)} | "
                     f"{fmt(two and two.get('bytes_per_vector'))} |")
    flat = ", ".join(f"{f['threads']} thread{'s' if f['threads'] > 1 else ''} {f['queries_per_second']:,.0f} q/s"
                     for f in merged["flat"])
    recalls = {f"{f['recall']:.4f}" for f in merged["flat"]}
    lines += ["", f"Flat (exact, BLAS) baseline, same run: {flat}; recall@{merged['flat'][0]['k']} "
                  f"{' / '.join(sorted(recalls))} (checked against the ground truth).", ""]
    return "\n".join(lines)


def ratios_markdown(all_merged):
    lines = ["| dataset | @0.90 | @0.95 | @0.99 | 2 threads @0.95 |", "|---|---:|---:|---:|---:|"]
    for merged in all_merged:
        cells = []
        for target, key in [(t, "qps_batch") for t in TARGETS] + [(0.95, "qps_parallel")]:
            r, peer = ratio(merged, target, key)
            cells.append("–" if r is None else f"{r:.2f}× ({LABEL[peer]})")
        lines.append(f"| {merged['dataset']['name']} | " + " | ".join(cells) + " |")
    return "\n".join(lines) + "\n"


def plot(merged, path):
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from matplotlib.ticker import FuncFormatter

    d = merged["dataset"]
    nq, k = d["queries"], merged["k"]
    ceiling = 1 - 0.5 / (nq * k)  # logit(1) is infinite: perfect recall is drawn at the edge
    figure, axes = plt.subplots(1, 2, figsize=(13, 5.2), sharex=True)
    panels = [("qps_batch", "one thread, one query at a time", 1),
              ("qps_parallel", "batch on all threads", max(f["threads"] for f in merged["flat"]))]
    lowest = 1.0
    for axis, (key, title, flat_threads) in zip(axes, panels):
        for run in merged["runs"]:
            colour, marker = STYLE[run["library"]]
            points = sorted(run["sweep"], key=lambda p: p["ef"])
            x = [min(p["recall"], ceiling) for p in points]
            lowest = min(lowest, min(x))
            axis.plot(x, [p[key] for p in points], marker=marker, color=colour, label=LABEL[run["library"]],
                      linewidth=2.2 if run["library"] == OURS else 1.4, markersize=5)
        flat = next((f for f in merged["flat"] if f["threads"] == flat_threads), None)
        if flat:
            axis.axhline(flat["queries_per_second"], color="grey", linestyle="--", linewidth=1,
                         label=f"flat BLAS, {flat_threads} thread{'s' if flat_threads > 1 else ''} (recall 1)")
        axis.set_yscale("log")
        axis.set_title(title)
        axis.set_ylabel("queries per second")
        axis.grid(True, which="both", alpha=0.3)
        axis.legend(fontsize=8, loc="lower left")
    low = max(0.5, min(0.9, lowest - (1 - lowest) * 0.5))
    for axis in axes:
        axis.set_xscale("logit")
        axis.set_xlim(low, 1 - 0.25 / (nq * k))
        axis.xaxis.set_major_formatter(FuncFormatter(lambda v, _: f"{v:g}"))
        axis.xaxis.set_minor_formatter(FuncFormatter(lambda v, _: ""))
        axis.set_xlabel(f"recall@{k} (logit scale)")
    figure.suptitle(f"{d['name']}: {d['base']:,} × {d['dimensions']}, {d['metric']}, M = {merged['M']}, "
                    f"efConstruction = {merged['ef_construction']}")
    figure.tight_layout()
    figure.savefig(path, dpi=110)
    plt.close(figure)


def swift_version():
    try:
        out = subprocess.run(["swift", "--version"], stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True).stdout
        return out.splitlines()[0].strip()
    except (OSError, IndexError):
        return "?"


def environment_markdown(all_merged):
    m = all_merged[0]["machine"]
    ours, peers = m["swift_nearest"], m["peers"]
    commit = ours.get("commit", "?")
    return "\n".join([
        f"Machine: {peers['cpu']}, {peers['cores']} cores, Linux {peers['kernel']}; kernels {ours['instruction_set']}; "
        f"{swift_version()}; OpenBLAS {ours['blas_config']}; Python {peers['python']}, numpy {peers['numpy']}, "
        f"hnswlib {peers.get('hnswlib')}, faiss-cpu {peers.get('faiss-cpu')}, usearch {peers.get('usearch')}, "
        f"hdrhistogram {peers.get('hdrhistogram')}; swift-nearest {ours['swift_nearest_version']} at {commit}; "
        f"run {ours['date']}.", ""])


def kernels_markdown(raw):
    """The kernel micro-benchmarks' p50 (ns) from `swift package benchmark --format markdown`,
    as one row per metric and dimension and one column per instruction set."""
    import re
    table = {}
    name = None
    for line in raw.splitlines():
        if line.startswith("### "):
            name = line[4:].strip()
        elif name and line.startswith("| Time (wall clock)"):
            cells = [c.strip() for c in line.strip("|").split("|")]
            match = re.match(r"(distances?)(?:×(\d+))? (\S+) d=(\d+) (\S+)$", name)
            if match:
                kind, rows, metric, d, isa = match.groups()
                p50 = float(cells[3].replace(",", "")) / (int(rows) if rows else 1)
                table.setdefault((metric, int(d)), {})[(kind, isa)] = p50
            name = None
    isas = [i for i in ("scalar", "avx2", "avx512", "neon") if any((k, i) in v for v in table.values() for k in ("distance",))]
    head = ["metric", "d"] + [f"one pair {i}" for i in isas] + [f"scan, per row {i}" for i in isas]
    lines = ["| " + " | ".join(head) + " |", "|---|---:|" + "---:|" * (2 * len(isas))]
    for (metric, d) in sorted(table):
        row = table[(metric, d)]
        cells = [f"{row[('distance', i)]:.0f}" if ("distance", i) in row else "–" for i in isas]
        cells += [f"{row[('distances', i)]:.1f}" if ("distances", i) in row else "–" for i in isas]
        lines.append(f"| {metric} | {d} | " + " | ".join(cells) + " |")
    return ("ns per call, median (p50) of ordo-one/benchmark samples (`swift package --disable-sandbox benchmark "
            "--target Kernels`): *one pair* = `distance(a, b)` (1,000 calls per sample, whole ns); *scan* = one "
            "`distances` call over 32 rows (the HNSW layer-0 neighbour scan), divided by 32. Inputs stay in L1.\n\n"
            + "\n".join(lines) + "\n")


def replace_section(readme, text):
    begin, end = "<!-- ann:begin -->", "<!-- ann:end -->"
    with open(readme) as f:
        content = f.read()
    if begin not in content or end not in content:
        sys.exit(f"{readme}: no {begin} … {end} section to replace")
    head, rest = content.split(begin, 1)
    _, tail = rest.split(end, 1)
    with open(readme, "w") as f:
        f.write(head + begin + "\n" + text + end + tail)


def main(argv):
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--results-dir", default=os.path.join(BENCHMARKS, "results"))
    parser.add_argument("--readme", default=os.path.join(BENCHMARKS, "README.md"),
                        help="README whose ann section is rewritten ('' to leave it)")
    parser.add_argument("--command", default="Benchmarks/run.sh", help="the command quoted in the README")
    parser.add_argument("--kernels", metavar="RAW_MD",
                        help="also turn this `swift package benchmark --format markdown` output into results/kernels.md")
    args = parser.parse_args(argv)
    kernels = os.path.join(args.results_dir, "kernels.md")
    if args.kernels:
        with open(args.kernels) as f:
            text = kernels_markdown(f.read())
        with open(kernels, "w") as f:
            f.write(text)

    all_merged = []
    for path in sorted(glob.glob(os.path.join(args.results_dir, "hnsw-*.json"))):
        name = os.path.basename(path)[len("hnsw-"):-len(".json")]
        if name.startswith("peers-"):
            continue
        peers = os.path.join(args.results_dir, f"hnsw-peers-{name}.json")
        if not os.path.exists(peers):
            print(f"{name}: no {peers}; skipped", file=sys.stderr)
            continue
        merged = merge(load(path), load(peers))
        write_json(merged, os.path.join(args.results_dir, f"ann-{name}.json"))
        plot(merged, os.path.join(args.results_dir, f"ann-{name}.png"))
        all_merged.append(merged)
    if not all_merged:
        sys.exit(f"no hnsw-<dataset>.json with its hnsw-peers-<dataset>.json in {args.results_dir}")

    intro = ("Queries/s are interpolated along each ef sweep at recall@10 = 0.90 / 0.95 / 0.99 ('≥': ef = 10 "
             "already exceeds that recall, so the figure is ef = 10's, a lower bound (≤ for latency and distances: an upper bound), and no ratio is taken). *q/s*: one thread, one query at a time, through each library's own loop "
             "(`searchSequentially`; hnswlib `knn_query(Q, num_threads=1)`, FAISS `search` with 1 OpenMP thread, "
             "USearch `search(Q, threads=1)`). *2-thread q/s*: all queries in one call on both cores. *p50 / p99*: "
             "latency of one search call per query (HdrHistogram), which for the peers includes the Python "
             "binding (a few µs). *build*: one add of every vector with 1 and 2 threads; the sweep uses the "
             "2-thread index. *peak RSS*: the process's peak resident memory during the 2-thread build less what "
             "it held before; *bytes/vector*: the index's own memory (swift-nearest `memoryBytes`) or serialized "
             "size (peers), over the vector count.")
    ratios = ("**swift-nearest ÷ best peer**, single-thread queries/s at equal recall@10 (above 1: swift-nearest "
              "is faster; the peer named is the fastest one at that recall):")
    body = [intro, "", ratios, "", ratios_markdown(all_merged)]
    for merged in all_merged:
        body.append(dataset_markdown(merged))
    text = "\n".join(body)
    with open(os.path.join(args.results_dir, "ann.md"), "w") as f:
        f.write("# ANN comparison\n\n" + environment_markdown(all_merged) + "\n" + text)
    print(text)

    if args.readme:
        plots = "\n".join(f"![{m['dataset']['name']}](results/ann-{m['dataset']['name']}.png)" for m in all_merged)
        section = [f"Command: `{args.command}` (see *Commands* above). "
                   f"{environment_markdown(all_merged)}", text, plots, ""]
        if os.path.exists(kernels):
            with open(kernels) as f:
                section += ["#### Distance kernels", "", f.read().strip(), ""]
        replace_section(args.readme, "\n".join(section))
        print(f"updated {args.readme}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
