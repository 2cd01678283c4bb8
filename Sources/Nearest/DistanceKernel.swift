import CNearest

/// One distance kernel of the C core, for a given instruction set and metric, for the kernel
/// micro-benchmarks in Benchmarks/ (`import @_spi(Benchmarks) Nearest`). Not API: it may change
/// with any release. The calls go straight to the kernel's function pointer, as the indexes' own
/// loops do, so a benchmark times the kernel and not a wrapper.
@_spi(Benchmarks)
public struct DistanceKernel: Sendable {
    public let instructionSet: InstructionSet
    public let metric: Metric
    private let one: nn_distance_fn
    private let many: nn_distance_many_fn

    /// The kernels of `instructionSet` (`.automatic`: the best this CPU runs) for `metric`.
    /// Throws `unsupportedInstructionSet` when this CPU or this build lacks them. `.cosine`
    /// kernels expect unit vectors (the indexes normalize on the way in).
    public init(instructionSet: InstructionSet, metric: Metric) throws(NearestError) {
        var table = nn_kernels(isa: NN_ISA_AUTO, distance: (nn_dummy_distance, nn_dummy_distance, nn_dummy_distance),
                               distance_many: (nn_dummy_many, nn_dummy_many, nn_dummy_many))
        guard nn_kernels_init(&table, instructionSet.cValue) == NN_OK else {
            throw .unsupportedInstructionSet(instructionSet)
        }
        self.instructionSet = InstructionSet(table.isa)
        self.metric = metric
        let slot = Int(metric.cValue.rawValue)
        one = withUnsafeBytes(of: table.distance) { $0.load(fromByteOffset: slot * MemoryLayout<nn_distance_fn>.stride, as: nn_distance_fn.self) }
        many = withUnsafeBytes(of: table.distance_many) {
            $0.load(fromByteOffset: slot * MemoryLayout<nn_distance_many_fn>.stride, as: nn_distance_many_fn.self)
        }
    }

    /// The distance between two vectors of `dimensions` floats.
    public func distance(_ a: UnsafePointer<Float>, _ b: UnsafePointer<Float>, dimensions: Int) -> Float {
        one(a, b, dimensions)
    }

    /// Distances from `query` to `count` rows (the HNSW layer-0 scan), into `out`.
    public func distances(from query: UnsafePointer<Float>, to rows: UnsafePointer<UnsafePointer<Float>>, count: Int,
                          dimensions: Int, into out: UnsafeMutablePointer<Float>) {
        many(query, rows, count, dimensions, out)
    }
}

// Placeholders that fill the table before nn_kernels_init overwrites every slot.
private func nn_dummy_distance(_: UnsafePointer<Float>, _: UnsafePointer<Float>, _: Int) -> Float { .nan }
private func nn_dummy_many(_: UnsafePointer<Float>, _: UnsafePointer<UnsafePointer<Float>>, _: Int, _: Int,
                           _: UnsafeMutablePointer<Float>) {}
