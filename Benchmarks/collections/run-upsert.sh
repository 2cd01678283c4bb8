#!/usr/bin/env bash
# Collection ingest: `nearest collection upsert` of the MiniLM set (60,703 points, 384-d, real
# package-name payloads) from JSON Lines and from base.fvecs + payloads.jsonl, on all cores.
# Reports points/s stored (durable and searchable) and points/s with the index built.
#   Benchmarks/collections/run-upsert.sh [OUT.json]
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
root="$(cd "$here/../.." && pwd)"
data="$root/../shared/data/debian-minilm-384-angular"
work="${TMPDIR:-/tmp}/nearest-upsert-bench"
out="${1:-$here/../results/collection-upsert-minilm.json}"

(cd "$root" && swift build -c release --product nearest >/dev/null)
nearest="$root/.build/release/nearest"
mkdir -p "$work"
[ -f "$work/points.jsonl" ] || python3 "$here/make_points.py" "$data" "$work" >&2

run() {  # name, upsert arguments...
    local name="$1"; shift
    rm -rf "$work/root"
    "$nearest" collection create bench --dimensions 384 --metric cosine --root "$work/root" >/dev/null
    "$nearest" collection upsert bench "$@" --root "$work/root" --json
}
jsonl=$(run jsonl --input "$work/points.jsonl")
fvecs=$(run fvecs --vectors "$data/base.fvecs" --payloads "$work/payloads.jsonl")
python3 - "$out" "$jsonl" "$fvecs" <<'PY'
import json, os, platform, sys
out, jsonl, fvecs = sys.argv[1], json.loads(sys.argv[2]), json.loads(sys.argv[3])
result = {"dataset": "debian-minilm-384-angular", "points": jsonl["upserted"], "cores": os.cpu_count(),
          "machine": platform.processor() or platform.machine(), "jsonl": jsonl, "fvecs_plus_payloads": fvecs}
json.dump(result, open(out, "w"), indent=2)
for name, r in (("JSON Lines", jsonl), ("fvecs + payloads", fvecs)):
    print(f"{name:17s} read {r['read_seconds']:.2f}s  store {r['store_seconds']:.2f}s  index {r['index_seconds']:.2f}s  "
          f"{r['points_per_second']:.0f} points/s stored, {r['points_per_second_indexed']:.0f} points/s indexed")
PY
