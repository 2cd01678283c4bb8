#!/usr/bin/env python3
"""Side-by-side table of the flat benchmark: swift-nearest (nearest-bench flat) against NumPy and
FAISS (flat_peers.py), from the JSON both wrote into one results folder.

    python3 Benchmarks/peers/compare.py Benchmarks/results
    python3 Benchmarks/peers/compare.py Benchmarks/results --against Benchmarks/results/coretype-skylakex

Ratios are queries/s ÷ queries/s: above 1 means swift-nearest is faster. "% peak" is GFLOP/s
(2·N·Q·d flops per batch) ÷ the sgemm peak of the library's own OpenBLAS at the same thread
count; "sgemm alone" times only the sgemm calls swift-nearest's blocked path makes, and
"sgemm share" is that time over the whole blocked search (the rest is selection and overhead).
"""

import argparse
import glob
import json
import os
import sys


def load(folder):
    """{dataset: {"swift": results, "peers": results}}"""
    found = {}
    for path in sorted(glob.glob(os.path.join(folder, "flat-*.json"))):
        with open(path) as f:
            results = json.load(f)
        side = "peers" if results.get("library") == "peers" else "swift"
        found.setdefault(results["dataset"]["name"], {})[side] = results
    return found


def run(results, threads, label, path):
    if not results:
        return None
    return next((r for r in results["runs"] if r["threads"] == threads and r["batch_label"] == label
                 and r["path"] == path), None)


def qps(r):
    return f"{r['queries_per_second']:,.0f}" if r else "–"


def ratio(a, b):
    return f"{a['queries_per_second'] / b['queries_per_second']:.2f}" if a and b else "–"


def percent(value):
    return f"{100 * value:.0f}%" if value is not None else "–"


def contended(*runs):
    return " ⚠" if any(r and (r.get("others_load") or 0) >= 0.15 for r in runs) else ""


def keys(results):
    seen = []
    for r in results["runs"]:
        if (r["threads"], r["batch_label"]) not in seen:
            seen.append((r["threads"], r["batch_label"]))
    return seen


def side_by_side(data):
    lines = [
        "| dataset | thr | batch | swift auto q/s | path | best forced path q/s | NumPy q/s | FAISS q/s | auto ÷ FAISS | best ÷ FAISS | auto ÷ NumPy | blas GFLOP/s | blas % peak | sgemm alone % peak | sgemm share of blas | FAISS % peak |",
        "|---|---:|---:|---:|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for name, sides in data.items():
        swift, peers = sides.get("swift"), sides.get("peers")
        for threads, label in keys(swift or peers):
            auto = run(swift, threads, label, "auto")
            simd, blas = run(swift, threads, label, "simd"), run(swift, threads, label, "blas")
            forced = max((r for r in (simd, blas) if r), key=lambda r: r["queries_per_second"], default=None)
            numpy, faiss = run(peers, threads, label, "numpy"), run(peers, threads, label, "faiss")
            best_name = f" ({forced['path']})" if forced else ""
            lines.append(
                f"| {name} | {threads} | {label}{contended(auto, simd, blas, numpy, faiss)} | {qps(auto)} | "
                f"{(auto or {}).get('chosen_path') or '–'} | {qps(forced)}{best_name} | {qps(numpy)} | {qps(faiss)} | "
                f"**{ratio(auto, faiss)}** | {ratio(forced, faiss)} | {ratio(auto, numpy)} | "
                f"{blas['gflops']:.1f} | {percent(blas.get('fraction_of_peak'))} | "
                f"{percent(blas.get('sgemm_fraction_of_peak'))} | {percent(blas.get('sgemm_share'))} | "
                f"{percent((faiss or {}).get('fraction_of_peak'))} |" if blas else
                f"| {name} | {threads} | {label} | {qps(auto)} | – | {qps(forced)} | {qps(numpy)} | {qps(faiss)} | "
                f"**{ratio(auto, faiss)}** | {ratio(forced, faiss)} | {ratio(auto, numpy)} | – | – | – | – | – |")
    return "\n".join(lines)


def peaks(data):
    """One row per library and thread count: its OpenBLAS, the kernel it chose, and its sgemm
    speed on each shape measured; the peak (bold) is the fastest."""
    rows = {}
    for sides in data.values():
        swift, peers = sides.get("swift"), sides.get("peers")
        if swift:
            m = swift["machine"]
            for p in swift.get("sgemm_shapes", swift["sgemm_peak"]):
                key = ("swift-nearest", " ".join(m["blas_config"].split()[:2]), m["blas_core"], p["threads"])
                rows.setdefault(key, {})[(p["m"], p["n"], p["k"])] = p["gflops"]
        if peers:
            configs = {b["library"]: b for b in peers["blas"]}
            for p in peers.get("sgemm_shapes", peers["sgemm_peak"]):
                b = configs[p["library"]]
                key = (p["library"], " ".join(b["config"].split()[:2]), b["core"], p["threads"])
                rows.setdefault(key, {})[(p["m"], p["n"], p["k"])] = p["gflops"]
        break  # the peaks are measured once per run; the first dataset's copy will do
    shapes = sorted({s for v in rows.values() for s in v}, key=lambda s: (-s[0], s[2]))
    lines = ["| library | OpenBLAS | kernel | thr | " + " | ".join(f"{m}×{n}×{k}" for m, n, k in shapes) + " |",
             "|---|---|---|---:|" + "---:|" * len(shapes)]
    for (library, config, core, threads), by in rows.items():
        best = max(by.values())
        cells = [("**%.1f**" if by[s] == best else "%.1f") % by[s] if s in by else "–" for s in shapes]
        lines.append(f"| {library} | {config} | {core} | {threads} | " + " | ".join(cells) + " |")
    return "sgemm GFLOP/s by shape (m×n×k, C = A·Bᵀ); the peak is the fastest (bold)\n\n" + "\n".join(lines)


def overheads(data):
    parts = []
    for name, sides in data.items():
        for o in (sides.get("swift") or {}).get("call_overhead", []):
            parts.append(f"{name} {o['threads']} thr: {o['microseconds_per_call']:.2f} µs")
    return "swift-nearest per-call overhead (1-vector index, 1 query): " + ", ".join(parts) if parts else ""


def against(data, other, label):
    """q/s here ÷ q/s in `other` (another OPENBLAS_CORETYPE, say), per library and path."""
    lines = [f"q/s here ÷ q/s in {label} (above 1: faster here)", "",
             "| dataset | thr | batch | swift auto | swift blas | swift simd | NumPy | FAISS |",
             "|---|---:|---:|---:|---:|---:|---:|---:|"]
    for name, sides in data.items():
        o = other.get(name, {})
        for threads, batch in keys(sides.get("swift") or sides.get("peers")):
            cells = []
            for side, path in (("swift", "auto"), ("swift", "blas"), ("swift", "simd"), ("peers", "numpy"), ("peers", "faiss")):
                cells.append(ratio(run(sides.get(side), threads, batch, path), run(o.get(side), threads, batch, path)))
            lines.append(f"| {name} | {threads} | {batch} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


def main(argv):
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("results", nargs="?", default=os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "results"))
    parser.add_argument("--against", help="a second results folder (e.g. another OPENBLAS_CORETYPE) to compare with")
    args = parser.parse_args(argv)
    data = load(args.results)
    if not data:
        sys.exit(f"no flat-*.json in {args.results}")
    machine = next(iter(data.values())).get("swift", next(iter(data.values())).get("peers"))["machine"]
    print(f"Flat search, k = {next(iter(data.values())).get('swift', {}).get('k', 10)}; {machine['cpu']}, {machine['cores']} cores"
          + (f"; OPENBLAS_CORETYPE={machine['openblas_coretype']}" if machine.get("openblas_coretype") else ""))
    print()
    print(side_by_side(data))
    print()
    if any((r.get("others_load") or 0) >= 0.15 for sides in data.values() for res in sides.values() for r in res["runs"]):
        print("⚠: other processes took ≥ 0.15 cores during a measurement of this row, even after retries.")
        print()
    print(peaks(data))
    print()
    print(overheads(data))
    if args.against:
        print()
        print(against(data, load(args.against), args.against))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
