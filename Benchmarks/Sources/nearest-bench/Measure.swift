import Foundation
import Nearest

/// The best of several timed passes over the first queries of a dataset, one batch at a time.
struct PassTiming {
    /// The fastest pass, in seconds.
    var best: Double
    var repetitions: Int
    /// Batches per pass, each of `batch` queries (only full batches, except for one "all" batch).
    var batches: Int
    var batch: Int
    /// The ids the first timed pass returned, `k` per query, for the recall check.
    var ids: [UInt64]
    /// Minor page faults per batch in the fastest pass: memory the search allocated and touched
    /// for the first time (fresh mmap'd scratch), each a trip into the kernel.
    var minorFaultsPerBatch: Double

    var queries: Int { batches * batch }
    var queriesPerSecond: Double { Double(queries) / best }
}

/// Minor page faults of this process so far.
func minorFaults() -> Int {
    var usage = rusage()
    getrusage(RUSAGE_SELF.rawValue, &usage)
    return usage.ru_minflt
}

enum Measure {
    /// Times `search` over passes of whole batches of `batch` queries, cycling from query 0.
    ///
    /// A warm-up batch first says how long one batch takes; a pass is then as many batches as fit
    /// in `budget / repetitions` (at least one, at most all full batches), and passes repeat until
    /// `repetitions` are done or `budget` is spent, but at least twice unless one pass takes more
    /// than three budgets (the SIMD path over every query of a large set, say): then a warm-up
    /// that long counts as the only pass.
    static func passes(queries: Matrix<Float>, batch requested: Int, budget: Double, repetitions: Int,
                       search: (Matrix<Float>) throws -> SearchResults) rethrows -> PassTiming {
        let batch = min(requested, queries.rows)
        let fullBatches = queries.rows / batch
        let clock = ContinuousClock()
        func seconds(_ duration: Duration) -> Double {
            Double(duration.components.seconds) + Double(duration.components.attoseconds) * 1e-18
        }

        var warmResults: SearchResults?
        let warmup = seconds(try clock.measure { warmResults = try search(queries.rows(0 ..< batch)) })
        let perPass = budget / Double(repetitions)
        let batches = max(1, min(fullBatches, Int(perPass / max(warmup, 1e-9))))

        var best = Double.infinity, spent = 0.0, reps = 0, faults = 0.0
        var ids: [UInt64] = []
        if batches == 1 && warmup >= 3 * budget {
            best = warmup
            spent = warmup
            reps = 1
            ids = warmResults!.ids
            faults = .nan  // not counted for the warm-up
        }
        var results: [SearchResults] = []
        results.reserveCapacity(batches)
        while reps < repetitions && (spent < budget || (reps < 2 && best < 3 * budget)) {
            results.removeAll(keepingCapacity: true)
            let faultsBefore = minorFaults()
            let elapsed = seconds(try clock.measure {
                for b in 0 ..< batches {
                    results.append(try search(queries.rows(b * batch ..< (b + 1) * batch)))
                }
            })
            if ids.isEmpty { ids = results.flatMap(\.ids) }
            let passFaults = Double(minorFaults() - faultsBefore) / Double(batches)
            reps += 1
            spent += elapsed
            if elapsed < best || faults.isNaN { faults = passFaults }
            best = min(best, elapsed)
        }
        return PassTiming(best: best, repetitions: reps, batches: batches, batch: batch, ids: ids,
                          minorFaultsPerBatch: faults)
    }
}
