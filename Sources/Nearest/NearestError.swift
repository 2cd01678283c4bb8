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
    /// A vector so long (squared length past 8.5e37) that distances would overflow (L2 and
    /// inner product; cosine normalizes).
    case vectorTooLarge(row: Int)
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
    /// An index file fails validation; `problem` says how.
    case corruptIndex(path: String, problem: IndexFileProblem)
    /// An index file written by a newer format version than this build reads.
    case unsupportedFormatVersion(path: String, version: Int, supported: Int)
    /// No vector has this id.
    case unknownID(UInt64)
    /// A change to a read-only view of a mapped file.
    case readOnly

    public var description: String {
        switch self {
        case let .dimensionMismatch(expected, actual):
            "dimension mismatch: expected \(expected) values, got \(actual)"
        case let .notFinite(row): "vector \(row) contains NaN or infinity"
        case let .zeroVector(row): "vector \(row) is a zero vector, which has no cosine direction"
        case let .vectorTooLarge(row): "vector \(row) is too long: its squared length passes 8.5e37, so distances would overflow"
        case let .duplicateID(id): "id \(id) appears more than once in one batch"
        case let .invalidParameter(text): "invalid parameter: \(text)"
        case let .unsupportedInstructionSet(isa): "instruction set \(isa.rawValue) is not supported on this CPU"
        case .outOfMemory: "out of memory"
        case .capacityExceeded: "the index cannot hold more than 4,294,967,295 vectors"
        case let .io(path, operation, code): "\(path): cannot \(operation): \(String(cString: strerror(code)))"
        case let .malformedFile(path, offset, reason): "\(path): at byte \(offset): \(reason)"
        case let .corruptIndex(path, problem): "\(path): not a valid index: \(problem)"
        case let .unsupportedFormatVersion(path, version, supported):
            "\(path): index format version \(version) is newer than this build reads (\(supported)); upgrade swift-nearest"
        case let .unknownID(id): "no vector has id \(id)"
        case .readOnly: "this index is a read-only view of a mapped file"
        }
    }

    /// Maps a status of the C core; `row` says where a validation failure was found.
    static func check(_ status: nn_status, row: Int = 0) throws(NearestError) {
        switch status {
        case NN_OK: return
        case NN_ERR_NO_MEMORY: throw .outOfMemory
        case NN_ERR_NOT_FINITE: throw .notFinite(row: row)
        case NN_ERR_ZERO_VECTOR: throw .zeroVector(row: row)
        case NN_ERR_TOO_LARGE: throw .vectorTooLarge(row: row)
        case NN_ERR_FULL: throw .capacityExceeded
        case NN_ERR_UNSUPPORTED: throw .unsupportedInstructionSet(.automatic)
        case NN_ERR_READ_ONLY: throw .readOnly
        default: throw .invalidParameter("rejected by the core (status \(status.rawValue))")
        }
    }
}

/// How an index file failed validation.
public enum IndexFileProblem: Equatable, Sendable, CustomStringConvertible {
    /// The first bytes are not an index file's magic.
    case notAnIndex
    /// The file is shorter than its header says it is (`expected` bytes, `actual` present).
    case truncated(expected: Int, actual: Int)
    /// The header's checksum does not match its bytes.
    case headerChecksum
    /// A section's checksum does not match its bytes.
    case sectionChecksum(section: String)
    /// Sizes and offsets in the header contradict each other or the graph's parameters.
    case inconsistentLayout(String)
    /// The entry point is out of range or on the wrong layer.
    case badEntryPoint(node: Int)
    /// A node's level, or the upper-layer links it points to, are out of range.
    case badLevel(node: Int)
    /// A node has unknown flag bits, or the removed count disagrees with the flags.
    case badFlags(node: Int)
    /// A node has more links than its layer allows.
    case tooManyLinks(node: Int)
    /// A node links to a node that does not exist, to itself, or to one not on that layer.
    case linkOutOfRange(node: Int)
    /// Two live vectors carry the same id.
    case duplicateID(UInt64)

    public var description: String {
        switch self {
        case .notAnIndex: "not a swift-nearest index (bad magic)"
        case let .truncated(expected, actual): "truncated: \(actual) bytes of \(expected)"
        case .headerChecksum: "header checksum mismatch"
        case let .sectionChecksum(section): "\(section) section checksum mismatch"
        case let .inconsistentLayout(what): "inconsistent layout: \(what)"
        case let .badEntryPoint(node): "entry point \(node) is invalid"
        case let .badLevel(node): "node \(node) has an invalid level or upper links"
        case let .badFlags(node): "node \(node) has invalid flags"
        case let .tooManyLinks(node): "node \(node) has more links than allowed"
        case let .linkOutOfRange(node): "node \(node) links out of range"
        case let .duplicateID(id): "id \(id) is held by two vectors"
        }
    }
}
