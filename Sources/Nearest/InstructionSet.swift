import CNearest

/// The SIMD instruction set of the distance kernels, chosen at run time from the CPU.
public enum InstructionSet: String, Sendable, CaseIterable, Codable {
    /// The best this CPU supports.
    case automatic = "auto"
    case scalar
    /// x86-64 AVX2 with FMA.
    case avx2
    /// x86-64 AVX-512F.
    case avx512
    /// arm64 Advanced SIMD.
    case neon

    /// The best instruction set this CPU supports.
    public static var best: InstructionSet { InstructionSet(nn_isa_best()) }

    /// Whether this CPU, and this build, can run the kernels of `self`.
    public var isSupported: Bool { nn_isa_supported(cValue) }

    init(_ isa: nn_isa) {
        switch isa {
        case NN_ISA_SCALAR: self = .scalar
        case NN_ISA_AVX2: self = .avx2
        case NN_ISA_AVX512: self = .avx512
        case NN_ISA_NEON: self = .neon
        default: self = .automatic
        }
    }

    var cValue: nn_isa {
        switch self {
        case .automatic: NN_ISA_AUTO
        case .scalar: NN_ISA_SCALAR
        case .avx2: NN_ISA_AVX2
        case .avx512: NN_ISA_AVX512
        case .neon: NN_ISA_NEON
        }
    }
}
