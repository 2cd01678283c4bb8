import CKernelChecks
import CNearest
@_spi(Benchmarks) import Nearest
import Testing

extension InstructionSet {
    /// The C core's name for this instruction set (the façade's own mapping is internal).
    var coreValue: nn_isa {
        switch self {
        case .automatic: NN_ISA_AUTO
        case .scalar: NN_ISA_SCALAR
        case .avx2: NN_ISA_AVX2
        case .avx512: NN_ISA_AVX512
        case .neon: NN_ISA_NEON
        }
    }

    /// Every concrete instruction set this CPU can run.
    static var supported: [InstructionSet] { allCases.filter { $0 != .automatic && $0.isSupported } }
    static var unsupported: [InstructionSet] { allCases.filter { $0 != .automatic && !$0.isSupported } }
}

@Suite("Distance kernels")
struct KernelTests {
    @Test("every supported instruction set's kernels match the double-precision reference on odd dimensions, unaligned starts and guard-page tails",
          arguments: InstructionSet.supported)
    func kernelsMatchReference(isa: InstructionSet) {
        var message = [CChar](repeating: 0, count: 512)
        let failures = nn_check_kernels(isa.coreValue, &message, message.count)
        let text = message.withUnsafeBufferPointer { String(cString: $0.baseAddress!) }
        #expect(failures == 0, "\(isa.rawValue): \(failures) kernel mismatches; first: \(text)")
    }

    @Test("the kernel checks refuse an instruction set this CPU cannot run instead of running it",
          .enabled(if: !InstructionSet.unsupported.isEmpty, "every instruction set runs here"))
    func unsupportedInstructionSetIsRefused() {
        for isa in InstructionSet.unsupported {
            var message = [CChar](repeating: 0, count: 512)
            #expect(nn_check_kernels(isa.coreValue, &message, message.count) == -1, "\(isa.rawValue)")
        }
    }

    @Test("the best instruction set is a concrete one this CPU supports, and scalar is always supported")
    func bestIsSupported() {
        let best = InstructionSet.best
        #expect(best != .automatic)
        #expect(best.isSupported)
        #expect(InstructionSet.scalar.isSupported)
        #expect(InstructionSet.supported.contains(best))
    }

    @Test("an index created with .automatic uses the best instruction set; an explicit one is kept",
          arguments: InstructionSet.supported)
    func indexUsesRequestedInstructionSet(isa: InstructionSet) throws {
        #expect(try FlatIndex(dimensions: 3).instructionSet == InstructionSet.best)
        #expect(try FlatIndex(dimensions: 3, instructionSet: isa).instructionSet == isa)
    }

    @Test("the benchmarks' DistanceKernel calls the kernel of the instruction set and metric it names",
          arguments: InstructionSet.supported)
    func distanceKernelHook(isa: InstructionSet) throws {
        let a: [Float] = [0.6, 0.8, 0, 0, 0], b: [Float] = [0, 1, 0, 0, 0]
        let expected: [Metric: Float] = [.l2: 0.36 + 0.04, .innerProduct: -0.8, .cosine: 1 - 0.8]
        for metric in Metric.allCases {
            let kernel = try DistanceKernel(instructionSet: isa, metric: metric)
            #expect(kernel.instructionSet == isa && kernel.metric == metric)
            let one = kernel.distance(a, b, dimensions: 5)
            #expect(abs(one - expected[metric]!) < 1e-5, "\(isa.rawValue) \(metric.rawValue): \(one)")
            var out: [Float] = [.nan, .nan]
            b.withUnsafeBufferPointer { row in
                let rows = [row.baseAddress!, row.baseAddress!]
                kernel.distances(from: a, to: rows, count: 2, dimensions: 5, into: &out)
            }
            #expect(out.allSatisfy { abs($0 - expected[metric]!) < 1e-5 }, "\(isa.rawValue) \(metric.rawValue): \(out)")
        }
    }
}
