import CNearest
#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// The index file (docs/FORMAT.md): a 4 KiB header of little-endian fixed-width fields with a
/// CRC32C, then the node records and the upper-layer links as the C core holds them, each
/// section page-aligned and checksummed, so a memory-mapped view can search them in place.
enum IndexFile {
    static let magic = Array("NEARHNSW".utf8)
    static let version: UInt32 = 1
    static let headerSize = 4096

    // Byte offsets of the header's fields.
    enum Field {
        static let version = 8, headerSize = 12
        static let dim = 16, metric = 20, m = 24, m0 = 28, efConstruction = 32, keepPruned = 36
        static let seed = 40, rng = 48, count = 56, removed = 64, entry = 72
        static let recordBytes = 80, headerOffset = 88, upperWords = 96
        static let nodesOffset = 104, nodesBytes = 112, nodesCRC = 120
        static let upperOffset = 128, upperBytes = 136, upperCRC = 144
        static let fileSize = 152
        static let headerCRC = 4092
    }

    /// Where the sections go for a graph of this layout.
    struct Sections {
        let nodesOffset: Int, nodesBytes: Int, upperOffset: Int, upperBytes: Int, fileSize: Int

        init?(_ layout: nn_hnsw_layout) {
            let (nodes, o1) = Int(clamping: layout.count).multipliedReportingOverflow(by: Int(clamping: layout.record_bytes))
            let (upper, o2) = Int(clamping: layout.upper_words).multipliedReportingOverflow(by: 4)
            guard !o1, !o2, nodes < Int.max / 2, upper < Int.max / 2 else { return nil }
            nodesOffset = IndexFile.headerSize
            nodesBytes = nodes
            upperOffset = (nodesOffset + nodes + IndexFile.headerSize - 1) / IndexFile.headerSize * IndexFile.headerSize
            upperBytes = upper
            fileSize = upperOffset + upper
        }
    }
}

/// Little-endian field writes into a header buffer.
private extension Array where Element == UInt8 {
    mutating func put<T: FixedWidthInteger>(_ value: T, at offset: Int) {
        withUnsafeMutableBytes { $0.storeBytes(of: value.littleEndian, toByteOffset: offset, as: T.self) }
    }
}

extension HNSWIndex {
    /// Writes the index to `path` atomically: into a temporary file in the same directory, which
    /// is flushed to disk and renamed over `path`, and the directory flushed, so a crash leaves
    /// either the old file or the new one, never a mix. Searches may run meanwhile.
    public func save(to path: String) throws(NearestError) {
        try withCatalogLocked { graph throws(NearestError) in
            var layout = nn_hnsw_layout()
            nn_hnsw_get_layout(graph, &layout)
            guard let sections = IndexFile.Sections(layout) else { throw .capacityExceeded }

            let nodesCRC = Self.checksum(graph, records: true)
            let upperCRC = Self.checksum(graph, records: false)
            var header = [UInt8](repeating: 0, count: IndexFile.headerSize)
            header.replaceSubrange(0 ..< 8, with: IndexFile.magic)
            header.put(IndexFile.version, at: IndexFile.Field.version)
            header.put(UInt32(IndexFile.headerSize), at: IndexFile.Field.headerSize)
            header.put(layout.dim, at: IndexFile.Field.dim)
            header.put(layout.metric, at: IndexFile.Field.metric)
            header.put(layout.m, at: IndexFile.Field.m)
            header.put(layout.m0, at: IndexFile.Field.m0)
            header.put(layout.ef_construction, at: IndexFile.Field.efConstruction)
            header.put(layout.keep_pruned, at: IndexFile.Field.keepPruned)
            header.put(layout.seed, at: IndexFile.Field.seed)
            header.put(layout.rng, at: IndexFile.Field.rng)
            header.put(layout.count, at: IndexFile.Field.count)
            header.put(layout.removed, at: IndexFile.Field.removed)
            header.put(layout.entry, at: IndexFile.Field.entry)
            header.put(layout.record_bytes, at: IndexFile.Field.recordBytes)
            header.put(layout.header_offset, at: IndexFile.Field.headerOffset)
            header.put(layout.upper_words, at: IndexFile.Field.upperWords)
            header.put(UInt64(sections.nodesOffset), at: IndexFile.Field.nodesOffset)
            header.put(UInt64(sections.nodesBytes), at: IndexFile.Field.nodesBytes)
            header.put(nodesCRC, at: IndexFile.Field.nodesCRC)
            header.put(UInt64(sections.upperOffset), at: IndexFile.Field.upperOffset)
            header.put(UInt64(sections.upperBytes), at: IndexFile.Field.upperBytes)
            header.put(upperCRC, at: IndexFile.Field.upperCRC)
            header.put(UInt64(sections.fileSize), at: IndexFile.Field.fileSize)
            let headerCRC = header.withUnsafeBytes { nn_crc32c(0, $0.baseAddress!, IndexFile.Field.headerCRC) }
            header.put(headerCRC, at: IndexFile.Field.headerCRC)

            try AtomicFile.write(to: path) { (file: AtomicFile) throws(NearestError) in
                try file.write(header)
                try Self.forEachSpan(graph, records: true) { (span) throws(NearestError) in try file.write(span) }
                try file.pad(to: sections.upperOffset)
                try Self.forEachSpan(graph, records: false) { (span) throws(NearestError) in try file.write(span) }
            }
        }
    }

    /// Loads the index saved at `path` into memory, validating the header, both checksums and
    /// every record and link before anything is allocated or followed.
    ///
    /// With `inPlace`, the file is mapped privately and its pages become the index's memory:
    /// opening costs one read of the file (the same checks) and no allocation of its size, and
    /// a page is copied only when the index first changes it. The file must then stay as it is
    /// while the index lives: replace it by renaming (as `save(to:)` does), never truncate or
    /// rewrite it in place (a mapped page past a truncation kills the process with SIGBUS). The
    /// disk space of a file deleted meanwhile is freed when the index goes.
    public convenience init(contentsOf path: String, threads: Int = 0, inPlace: Bool = false) throws(NearestError) {
        // Without `inPlace`, read rather than mapped: the index must not depend on the file.
        let file = try MappedFile(path: path, reading: !inPlace, copyOnWrite: inPlace)
        try self.init(file: file, mode: inPlace ? NN_OPEN_IN_PLACE : NN_OPEN_COPY, threads: threads)
    }

    /// A read-only view of the index saved at `path`, searched in place: opening costs a header
    /// read, and pages come in from disk as searches touch them. The header and layout are
    /// validated, not the sections' checksums (that would read the whole file); searches bound
    /// every link, so a damaged file gives poor results, never a crash. Changes throw
    /// `NearestError.readOnly`.
    public convenience init(mapping path: String, threads: Int = 0) throws(NearestError) {
        let file = try MappedFile(path: path)
        try self.init(file: file, mode: NN_OPEN_VIEW, threads: threads)
    }

    private convenience init(file: MappedFile, mode: nn_open_mode, threads: Int) throws(NearestError) {
        let path = file.path
        func corrupt(_ problem: IndexFileProblem) -> NearestError { .corruptIndex(path: path, problem: problem) }
        let bytes = file.bytes
        guard bytes.count >= 8, Array(bytes[0 ..< 8]) == IndexFile.magic else { throw corrupt(.notAnIndex) }
        guard bytes.count >= IndexFile.headerSize else {
            throw corrupt(.truncated(expected: IndexFile.headerSize, actual: bytes.count))
        }
        let version = try file.load(UInt32.self, at: IndexFile.Field.version)
        guard version <= IndexFile.version else {
            throw .unsupportedFormatVersion(path: path, version: Int(version), supported: Int(IndexFile.version))
        }
        let storedCRC = try file.load(UInt32.self, at: IndexFile.Field.headerCRC)
        guard nn_crc32c(0, bytes.baseAddress!, IndexFile.Field.headerCRC) == storedCRC else { throw corrupt(.headerChecksum) }
        guard version == IndexFile.version,
              try file.load(UInt32.self, at: IndexFile.Field.headerSize) == UInt32(IndexFile.headerSize) else {
            throw corrupt(.inconsistentLayout("format version \(version), header size"))
        }

        var layout = nn_hnsw_layout()
        layout.dim = try file.load(UInt32.self, at: IndexFile.Field.dim)
        layout.metric = try file.load(UInt32.self, at: IndexFile.Field.metric)
        layout.m = try file.load(UInt32.self, at: IndexFile.Field.m)
        layout.m0 = try file.load(UInt32.self, at: IndexFile.Field.m0)
        layout.ef_construction = try file.load(UInt32.self, at: IndexFile.Field.efConstruction)
        layout.keep_pruned = try file.load(UInt32.self, at: IndexFile.Field.keepPruned)
        layout.seed = try file.load(UInt64.self, at: IndexFile.Field.seed)
        layout.rng = try file.load(UInt64.self, at: IndexFile.Field.rng)
        layout.count = try file.load(UInt64.self, at: IndexFile.Field.count)
        layout.removed = try file.load(UInt64.self, at: IndexFile.Field.removed)
        layout.entry = try file.load(UInt64.self, at: IndexFile.Field.entry)
        layout.record_bytes = try file.load(UInt64.self, at: IndexFile.Field.recordBytes)
        layout.header_offset = try file.load(UInt64.self, at: IndexFile.Field.headerOffset)
        layout.upper_words = try file.load(UInt64.self, at: IndexFile.Field.upperWords)

        guard let sections = IndexFile.Sections(layout),
              try file.load(UInt64.self, at: IndexFile.Field.nodesOffset) == UInt64(sections.nodesOffset),
              try file.load(UInt64.self, at: IndexFile.Field.nodesBytes) == UInt64(sections.nodesBytes),
              try file.load(UInt64.self, at: IndexFile.Field.upperOffset) == UInt64(sections.upperOffset),
              try file.load(UInt64.self, at: IndexFile.Field.upperBytes) == UInt64(sections.upperBytes),
              try file.load(UInt64.self, at: IndexFile.Field.fileSize) == UInt64(sections.fileSize) else {
            throw corrupt(.inconsistentLayout("section sizes do not match the counts"))
        }
        guard bytes.count >= sections.fileSize else {
            throw corrupt(.truncated(expected: sections.fileSize, actual: bytes.count))
        }
        guard bytes.count == sections.fileSize else {
            throw corrupt(.inconsistentLayout("\(bytes.count - sections.fileSize) bytes after the last section"))
        }
        let records = UnsafeRawPointer(bytes.baseAddress! + sections.nodesOffset)
        let upper = UnsafeRawPointer(bytes.baseAddress! + sections.upperOffset).assumingMemoryBound(to: UInt32.self)
        if mode != NN_OPEN_VIEW {
            guard nn_crc32c(0, records, sections.nodesBytes) == (try file.load(UInt32.self, at: IndexFile.Field.nodesCRC)) else {
                throw corrupt(.sectionChecksum(section: "nodes"))
            }
            guard nn_crc32c(0, upper, sections.upperBytes) == (try file.load(UInt32.self, at: IndexFile.Field.upperCRC)) else {
                throw corrupt(.sectionChecksum(section: "upper links"))
            }
        }

        var graph: OpaquePointer?
        var why = nn_corruption()
        let status = nn_hnsw_open(&layout, layout.count > 0 ? records : nil,
                                  layout.upper_words > 0 ? upper : nil, mode, NN_ISA_AUTO, &graph, &why)
        if status == NN_ERR_CORRUPT {
            let node = Int(clamping: why.node)
            let problem: IndexFileProblem = switch why.kind {
            case NN_CORRUPT_ENTRY: .badEntryPoint(node: node)
            case NN_CORRUPT_LEVEL: .badLevel(node: node)
            case NN_CORRUPT_FLAGS: .badFlags(node: node)
            case NN_CORRUPT_LINK_COUNT: .tooManyLinks(node: node)
            case NN_CORRUPT_LINK: .linkOutOfRange(node: node)
            default: .inconsistentLayout("parameters out of range")
            }
            throw corrupt(problem)
        }
        try NearestError.check(status)
        let configuration = HNSWConfiguration(m: Int(layout.m), efConstruction: Int(layout.ef_construction),
                                              seed: layout.seed, keepPrunedConnections: layout.keep_pruned != 0,
                                              threads: threads)
        let metric: Metric = switch layout.metric { case 1: .innerProduct; case 2: .cosine; default: .l2 }
        try self.init(graph: graph!, dimensions: Int(layout.dim), metric: metric,
                      configuration: configuration, mapping: mode == NN_OPEN_VIEW ? file : nil,
                      backing: mode == NN_OPEN_IN_PLACE ? file : nil, source: path)
    }

    /// The size of the mapped file, for a read-only view.
    public var fileBytes: Int? { mapping?.bytes.count }

    /// Calls `body` for each contiguous span of the records (or of the upper links).
    private static func forEachSpan(_ graph: OpaquePointer, records: Bool,
                                     _ body: (UnsafeRawBufferPointer) throws(NearestError) -> Void) throws(NearestError) {
        var layout = nn_hnsw_layout()
        nn_hnsw_get_layout(graph, &layout)
        if records {
            var first = 0
            while first < Int(layout.count) {
                var n = 0
                guard let span = nn_hnsw_records(graph, first, &n) else { break }
                try body(UnsafeRawBufferPointer(start: span, count: n * Int(layout.record_bytes)))
                first += n
            }
        } else {
            var first: UInt64 = 0
            while first < layout.upper_words {
                var n: UInt64 = 0
                guard let span = nn_hnsw_upper_words(graph, first, &n) else { break }
                try body(UnsafeRawBufferPointer(start: span, count: Int(n) * 4))
                first += n
            }
        }
    }

    private static func checksum(_ graph: OpaquePointer, records: Bool) -> UInt32 {
        var crc: UInt32 = 0
        try? forEachSpan(graph, records: records) { span in crc = nn_crc32c(crc, span.baseAddress!, span.count) }
        return crc
    }
}
