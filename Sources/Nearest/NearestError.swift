import CNearest
#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// Everything that can go wrong, as a typed error with a readable description.
public enum NearestError: Error, Equatable, Sendable, CustomStringConvertible {
    /// A vector's length is not the index's dimension count.
    case dimensionMismatch(expected: Int, actual: Int)
    /// Row `row` of a batch (0 for a single vector) holds NaN or ±Inf.
    case notFinite(row: Int)
    /// Row `row` of a batch is a zero vector, which cosine cannot normalize.
    case zeroVector(row: Int)
    /// The same id appears twice in one batch.
    case duplicateID(UInt64)
    /// A parameter is outside its range; the text says which and why.
    case invalidParameter(String)
    /// The requested instruction set cannot run on this CPU.
    case unsupportedInstructionSet(InstructionSet)
    /// An allocation failed; the index is unchanged.
    case outOfMemory
    /// The index would exceed 2³² − 1 vectors.
    case capacityExceeded
    /// A file could not be opened, read or mapped.
    case io(path: String, operation: String, errno: Int32)
    /// A file's contents are not what its format requires, at byte `offset`.
    case malformedFile(path: String, offset: Int, reason: String)

    public var description: String {
        switch self {
        case let .dimensionMismatch(expected, actual):
            "dimension mismatch: expected \(expected) values, got \(actual)"
        case let .notFinite(row): "vector \(row) contains NaN or infinity"
        case let .zeroVector(row): "vector \(row) is a zero vector, which has no cosine direction"
        case let .duplicateID(id): "id \(id) appears more than once in one batch"
        case let .invalidParameter(text): "invalid parameter: \(text)"
        case let .unsupportedInstructionSet(isa): "instruction set \(isa.rawValue) is not supported on this CPU"
        case .outOfMemory: "out of memory"
        case .capacityExceeded: "the index cannot hold more than 4,294,967,295 vectors"
        case let .io(path, operation, code): "\(path): cannot \(operation): \(String(cString: strerror(code)))"
        case let .malformedFile(path, offset, reason): "\(path): at byte \(offset): \(reason)"
        }
    }

    /// Maps a status of the C core; `row` says where a validation failure was found.
    static func check(_ status: nn_status, row: Int = 0) throws(NearestError) {
        switch status {
        case NN_OK: return
        case NN_ERR_NO_MEMORY: throw .outOfMemory
        case NN_ERR_NOT_FINITE: throw .notFinite(row: row)
        case NN_ERR_ZERO_VECTOR: throw .zeroVector(row: row)
        case NN_ERR_FULL: throw .capacityExceeded
        case NN_ERR_UNSUPPORTED: throw .unsupportedInstructionSet(.automatic)
        default: throw .invalidParameter("rejected by the core (status \(status.rawValue))")
        }
    }
}
