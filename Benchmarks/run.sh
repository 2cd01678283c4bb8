#!/usr/bin/env bash
# The ANN comparison of issue #5 in one command: swift-nearest (HNSW and the flat BLAS baseline),
# hnswlib, FAISS IndexHNSWFlat and USearch on the same files with M = 16, efConstruction = 200,
# then the distance-kernel micro-benchmarks, then the merged JSON, Markdown, plots and README.
#
#   Benchmarks/run.sh                    # every dataset in ../shared/data (about 20 min on 2 cores)
#   Benchmarks/run.sh --quick            # siftsmall, ef 10..160, one round, kernels at d = 128: a check
#                                        # before a commit (< 3 min); writes results/quick/ (not committed)
#   Benchmarks/run.sh --dataset siftsmall --dataset /path/to/folder   # folders of base/query .fvecs or .npy
#
# Options: --quick, --dataset NAME|PATH (repeatable), --data-dir DIR, --results-dir DIR,
# --no-kernels. NO_BUILD=1 skips the Swift build. Peers: python3 -m pip install -r
# Benchmarks/peers/requirements.txt. Runs nothing in parallel with itself; give it a quiet machine.
set -euo pipefail

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
results="$here/results"
quick=()
common=()      # --data-dir
datasets=()    # --dataset NAME|PATH, in order
kernels=1
command="Benchmarks/run.sh"
while (($#)); do
    case "$1" in
        --quick) quick=(--quick); command+=" --quick"; shift ;;
        --dataset) datasets+=("$2"); command+=" $1 $2"; shift 2 ;;
        --data-dir) common+=("$1" "$2"); data_dir=$2; command+=" $1 $2"; shift 2 ;;
        --results-dir) results=$(realpath -m "$2"); shift 2 ;;
        --no-kernels) kernels=0; shift ;;
        *) echo "run.sh: unknown option $1" >&2; exit 2 ;;
    esac
done
# A quick check writes beside the committed results, never over them.
if ((${#quick[@]})) && [[ "$results" == "$here/results" ]]; then results="$here/results/quick"; fi
mkdir -p "$results"
started=$SECONDS
stamp() { printf '[run.sh %4ds] %s\n' $((SECONDS - started)) "$*" >&2; }

python3 -c "import hnswlib, faiss, usearch, hdrh, matplotlib" 2>/dev/null || {
    echo "run.sh: the Python peers are missing: python3 -m pip install -r $here/peers/requirements.txt" >&2; exit 1; }

if [[ "${NO_BUILD:-0}" != 1 ]]; then
    stamp "building nearest-bench"
    (cd "$here" && nice -n 5 swift build -c release --product nearest-bench) >&2
fi

if ((${#quick[@]})); then
    sweep=(--budget 0.15 --repetitions 2)
    peers=(--budget 0.15 --repetitions 2 --wait-limit 1 --quiet-sample 0.1 --replay-queries 50)
    dimensions=128
else
    sweep=(--budget 0.3 --repetitions 3 --rounds 3)
    peers=(--budget 0.3 --repetitions 3 --rounds 3 --build-rounds 1 --wait-limit 3 --quiet-sample 0.1 --replay-queries 200)
    dimensions=32,128,384,784,1536
fi

# One dataset at a time, swift-nearest then the peers, so that the two sides of each ratio run
# minutes apart rather than the whole of the other side's run apart: this shared VM's speed drifts
# by 20-40% over ten minutes, which once put MiniLM at 0.74x where interleaved runs give 1.1x.
if ((${#datasets[@]} == 0)); then
    if ((${#quick[@]})); then
        datasets=(siftsmall)
    else
        data_dir=${data_dir:-${NEAREST_DATA:-$(dirname "$(dirname "$here")")/shared/data}}
        for folder in "$data_dir"/*/; do
            if compgen -G "$folder/base.fvecs" >/dev/null || compgen -G "$folder/base.npy" >/dev/null; then
                if compgen -G "$folder/query.fvecs" >/dev/null || compgen -G "$folder/query.npy" >/dev/null; then
                    datasets+=("$(basename "$folder")")
                fi
            fi
        done
    fi
fi
: >"$results/hnsw-swift.md"
: >"$results/hnsw-peers.md"
for dataset in "${datasets[@]}"; do
    stamp "swift-nearest: HNSW sweeps and the flat baseline, $dataset"
    "$here/.build/release/nearest-bench" hnsw "${quick[@]}" "${sweep[@]}" "${common[@]}" --dataset "$dataset" \
        --results-dir "$results" >>"$results/hnsw-swift.md"
    stamp "peers: hnswlib, FAISS, USearch, $dataset"
    python3 "$here/peers/hnsw_peers.py" "${quick[@]}" "${peers[@]}" "${common[@]}" --dataset "$dataset" \
        --results-dir "$results" >>"$results/hnsw-peers.md"
done

report=()
if ((kernels)); then
    stamp "distance kernels (ordo-one/benchmark), d = $dimensions"
    (cd "$here" && KERNEL_DIMENSIONS=$dimensions nice -n 5 swift package --disable-sandbox benchmark --target Kernels \
        --format markdown --path stdout --no-progress) >"$results/kernels-raw.md"
    report=(--kernels "$results/kernels-raw.md")
fi

stamp "report"
readme="$here/README.md"
if ((${#quick[@]})) || [[ "$results" != "$here/results" ]]; then readme=""; fi  # only a full run rewrites the README
python3 "$here/peers/report.py" --results-dir "$results" --readme "$readme" --command "$command" "${report[@]}"
stamp "done: $results/ann.md, $results/ann-*.png"
