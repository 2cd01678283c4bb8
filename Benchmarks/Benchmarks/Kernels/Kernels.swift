import Foundation
import Benchmark
@_spi(Benchmarks) import Nearest

// ns per call of the C core's distance kernels: one-to-one (`distance`) and the layer-0 scan
// (`distances`, 32 rows, reported per row), per metric, dimension and instruction set this CPU
// runs. KERNEL_DIMENSIONS (comma-separated) narrows the dimensions, e.g. for run.sh --quick.
let benchmarks: @Sendable () -> Void = {
    Benchmark.defaultConfiguration = .init(metrics: [.wallClock], timeUnits: .nanoseconds, warmupIterations: 10,
                                           scalingFactor: .kilo, maxDuration: .milliseconds(250), maxIterations: 100_000)
    let environment = ProcessInfo.processInfo.environment["KERNEL_DIMENSIONS"]
    let dimensions = environment.map { $0.split(separator: ",").compactMap { Int($0) } } ?? [32, 128, 384, 768, 784, 1536]
    let sets = InstructionSet.allCases.filter { $0 != .automatic && $0.isSupported }
    let rowsPerScan = 32
    for set in sets {
        for metric in Metric.allCases {
            guard let kernel = try? DistanceKernel(instructionSet: set, metric: metric) else { continue }
            for d in dimensions {
                // Unit vectors, so every metric sees the inputs it is meant for.
                let scale = 1 / Float(d).squareRoot()
                let a = UnsafeMutablePointer<Float>.allocate(capacity: d)
                let rows = UnsafeMutablePointer<Float>.allocate(capacity: d * rowsPerScan)
                for i in 0 ..< d { a[i] = scale * (i % 2 == 0 ? 1 : -1) }
                for i in 0 ..< d * rowsPerScan { rows[i] = scale * (i % 3 == 0 ? -1 : 1) }
                let pointers = UnsafeMutablePointer<UnsafePointer<Float>>.allocate(capacity: rowsPerScan)
                for r in 0 ..< rowsPerScan { pointers[r] = UnsafePointer(rows + r * d) }
                let out = UnsafeMutablePointer<Float>.allocate(capacity: rowsPerScan)
                Benchmark("distance \(metric.rawValue) d=\(d) \(set.rawValue)") { benchmark in
                    for _ in benchmark.scaledIterations {
                        blackHole(kernel.distance(a, rows, dimensions: d))
                    }
                }
                Benchmark("distances×\(rowsPerScan) \(metric.rawValue) d=\(d) \(set.rawValue)",
                          configuration: .init(metrics: [.wallClock], timeUnits: .nanoseconds, warmupIterations: 10,
                                               scalingFactor: .one, maxDuration: .milliseconds(250),
                                               maxIterations: 100_000)) { benchmark in
                    for _ in benchmark.scaledIterations {
                        kernel.distances(from: a, to: pointers, count: rowsPerScan, dimensions: d, into: out)
                        blackHole(out[0])
                    }
                }
            }
        }
    }
}
