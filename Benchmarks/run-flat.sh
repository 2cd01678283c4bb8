#!/usr/bin/env bash
# The flat-search benchmark in one command: builds nearest-bench, runs it, runs the NumPy and
# FAISS peers with the same settings, and prints the side-by-side table (also saved as
# comparison.md next to the JSON).
#
#   Benchmarks/run-flat.sh                            # every dataset, threads 1 and 2
#   Benchmarks/run-flat.sh --dataset siftsmall --budget 0.3
#   Benchmarks/run-flat.sh --coretype SkylakeX        # OPENBLAS_CORETYPE for all three OpenBLAS builds;
#                                                     # results in results/coretype-skylakex/
#   Benchmarks/run-flat.sh --coretype SkylakeX --against results
#   Benchmarks/run-flat.sh --coretype auto            # unset OPENBLAS_CORETYPE: each OpenBLAS picks
#
# Other options go to both `nearest-bench flat` and peers/flat_peers.py, which share these:
# --data-dir --dataset --max-queries --threads --batches --budget --repetitions --k --peak-size
# --quiet-threshold --retries --wait-limit --min-recall. NO_BUILD=1 skips the build.
set -euo pipefail

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
results="$here/results"
against=()
passed=()
while (($#)); do
    case "$1" in
        --coretype)
            if [[ "$2" == auto ]]; then unset OPENBLAS_CORETYPE; else export OPENBLAS_CORETYPE="$2"; fi
            results="$here/results/coretype-$(tr '[:upper:]' '[:lower:]' <<<"$2")"
            shift 2 ;;
        --against)
            against=(--against "$(cd "$here" && realpath "$2")")
            shift 2 ;;
        --results-dir)
            results=$(realpath -m "$2")
            shift 2 ;;
        *)
            passed+=("$1")
            shift ;;
    esac
done
mkdir -p "$results"

if [[ "${NO_BUILD:-0}" != 1 ]]; then
    (cd "$here" && nice -n 10 swift build -c release --product nearest-bench) >&2
fi

status=0
"$here/.build/release/nearest-bench" flat --results-dir "$results" "${passed[@]}" >"$results/flat-swift.md" || status=$?
python3 "$here/peers/flat_peers.py" --results-dir "$results" "${passed[@]}" || status=$?
python3 "$here/peers/compare.py" "$results" "${against[@]}" | tee "$results/comparison.md"
exit "$status"
