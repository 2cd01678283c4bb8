/// Readers for the vector files ANN benchmarks ship: TEXMEX `.fvecs`, `.ivecs`, `.bvecs` and
/// NumPy `.npy` (2-D, C order, little-endian).
///
/// `.fvecs`, `.ivecs` and `.npy` files of the element type asked for are memory-mapped and viewed
/// in place; other element types are converted into a new matrix. Every malformed file throws
/// `NearestError.malformedFile` naming the file and the byte offset of the problem.
public enum VectorFile {
    /// Reads vectors as `Float` from `.fvecs`, `.bvecs` or `.npy` (float32, float64, uint8, int32).
    public static func readFloats(_ path: String) throws(NearestError) -> Matrix<Float> {
        let file = try MappedFile(path: path)
        switch try format(of: path) {
        case .fvecs:
            return try TexmexLayout(file: file, elementSize: 4).view(of: file)
        case .bvecs:
            let layout = try TexmexLayout(file: file, elementSize: 1)
            return convert(layout.view(of: file) as Matrix<UInt8>) { Float($0) }
        case .ivecs:
            let layout = try TexmexLayout(file: file, elementSize: 4)
            return convert(layout.view(of: file) as Matrix<Int32>) { Float($0) }
        case .npy:
            let npy = try NumpyLayout(file: file)
            switch npy.dtype {
            case .float32: return npy.view(of: file)
            case .float64: return convert(npy.view(of: file) as Matrix<Double>) { Float($0) }
            case .int32: return convert(npy.view(of: file) as Matrix<Int32>) { Float($0) }
            case .int64: return convert(npy.view(of: file) as Matrix<Int64>) { Float($0) }
            case .uint8: return convert(npy.view(of: file) as Matrix<UInt8>) { Float($0) }
            }
        }
    }

    /// Reads integers (ground-truth ids) from `.ivecs` or an integer `.npy`.
    public static func readInt32s(_ path: String) throws(NearestError) -> Matrix<Int32> {
        let file = try MappedFile(path: path)
        switch try format(of: path) {
        case .ivecs:
            return try TexmexLayout(file: file, elementSize: 4).view(of: file)
        case .npy:
            let npy = try NumpyLayout(file: file)
            switch npy.dtype {
            case .int32: return npy.view(of: file)
            case .int64:
                return try narrowed(npy.view(of: file), path: path)
            case .uint8: return convert(npy.view(of: file) as Matrix<UInt8>) { Int32($0) }
            case .float32, .float64:
                throw .malformedFile(path: path, offset: 0, reason: "expected integers, found floating-point data")
            }
        case .fvecs, .bvecs:
            throw .malformedFile(path: path, offset: 0, reason: "expected .ivecs or .npy integer ids")
        }
    }

    enum Format { case fvecs, ivecs, bvecs, npy }

    static func format(of path: String) throws(NearestError) -> Format {
        let lower = path.lowercased()
        if lower.hasSuffix(".fvecs") { return .fvecs }
        if lower.hasSuffix(".ivecs") { return .ivecs }
        if lower.hasSuffix(".bvecs") { return .bvecs }
        if lower.hasSuffix(".npy") { return .npy }
        throw .malformedFile(path: path, offset: 0, reason: "unknown extension (expected .fvecs, .ivecs, .bvecs or .npy)")
    }

    static func convert<Source, Target>(_ source: Matrix<Source>, _ transform: (Source) -> Target) -> Matrix<Target> {
        Matrix(rows: source.rows, columns: source.columns) { out in
            source.withUnsafeElements { base, stride in
                for r in 0 ..< source.rows {
                    for c in 0 ..< source.columns { (out.baseAddress! + r * source.columns + c).initialize(to: transform(base![r * stride + c])) }
                }
            }
        }
    }

    static func narrowed(_ source: Matrix<Int64>, path: String) throws(NearestError) -> Matrix<Int32> {
        var offender: Int64?
        let result: Matrix<Int32> = convert(source) { value in
            if let narrow = Int32(exactly: value) { return narrow }
            offender = value
            return 0
        }
        if let offender { throw .malformedFile(path: path, offset: 0, reason: "id \(offender) does not fit in 32 bits") }
        return result
    }
}

/// TEXMEX layout: each row is a little-endian int32 length followed by that many elements.
struct TexmexLayout {
    let rows: Int
    let columns: Int
    let elementSize: Int

    init(file: MappedFile, elementSize: Int) throws(NearestError) {
        let dim = try file.load(Int32.self, at: 0)
        guard dim > 0 else {
            throw .malformedFile(path: file.path, offset: 0, reason: "row length \(dim) is not positive")
        }
        // Walk the records in order, so the first bad one is the one reported.
        let record = 4 + Int(dim) * elementSize
        var offset = 0
        while offset < file.bytes.count {
            let length = try file.load(Int32.self, at: offset)
            guard length == dim else {
                throw .malformedFile(path: file.path, offset: offset,
                                     reason: "row \(offset / record) has length \(length), the first row \(dim)")
            }
            guard offset + record <= file.bytes.count else {
                throw .malformedFile(path: file.path, offset: offset,
                                     reason: "truncated: row \(offset / record) needs \(record) bytes, \(file.bytes.count - offset) are left")
            }
            offset += record
        }
        let rows = file.bytes.count / record
        self.rows = rows
        self.columns = Int(dim)
        self.elementSize = elementSize
    }

    /// The rows in place: elements start 4 bytes into the file, rows one record apart
    /// (.bvecs rows too: a record of 4 + dim bytes is a whole number of UInt8s).
    func view<Element>(of file: MappedFile) -> Matrix<Element> {
        precondition(MemoryLayout<Element>.size == elementSize)
        let record = 4 + columns * elementSize
        let start = (file.bytes.baseAddress! + 4).assumingMemoryBound(to: Element.self)
        return Matrix(base: start, rows: rows, columns: columns,
                      rowStride: record / MemoryLayout<Element>.stride, owner: file)
    }
}

/// NumPy's `.npy` format: magic, version, a Python-literal header, then the data.
struct NumpyLayout {
    enum DType: String { case float32 = "<f4", float64 = "<f8", int32 = "<i4", int64 = "<i8", uint8 = "|u1" }

    let dtype: DType
    let rows: Int
    let columns: Int
    let dataOffset: Int

    init(file: MappedFile) throws(NearestError) {
        let path = file.path
        let magic: [UInt8] = [0x93, 0x4E, 0x55, 0x4D, 0x50, 0x59]  // "\x93NUMPY"
        guard file.bytes.count >= 10, Array(file.bytes[0 ..< 6]) == magic else {
            throw .malformedFile(path: path, offset: 0, reason: "not a .npy file (bad magic)")
        }
        let major = file.bytes[6]
        let headerLength: Int, headerStart: Int
        switch major {
        case 1: headerLength = Int(try file.load(UInt16.self, at: 8)); headerStart = 10
        case 2, 3: headerLength = Int(try file.load(UInt32.self, at: 8)); headerStart = 12
        default: throw .malformedFile(path: path, offset: 6, reason: "unsupported .npy version \(major)")
        }
        guard headerStart + headerLength <= file.bytes.count else {
            throw .malformedFile(path: path, offset: headerStart, reason: "truncated header")
        }
        let header = String(decoding: file.bytes[headerStart ..< headerStart + headerLength], as: UTF8.self)

        guard let descr = Self.value(of: "descr", in: header)?.trimmingQuotes,
              let dtype = DType(rawValue: descr == "<u1" ? "|u1" : descr) else {
            throw .malformedFile(path: path, offset: headerStart,
                                 reason: "unsupported dtype (expected little-endian float32, float64, int32, int64 or uint8)")
        }
        guard Self.value(of: "fortran_order", in: header) == "False" else {
            throw .malformedFile(path: path, offset: headerStart, reason: "Fortran-order arrays are not supported")
        }
        guard let shapeText = Self.value(of: "shape", in: header) else {
            throw .malformedFile(path: path, offset: headerStart, reason: "no shape in header")
        }
        let dims = shapeText.split(whereSeparator: { "(), ".contains($0) }).map { Int($0) }
        guard dims.count == 2, let rows = dims[0], let columns = dims[1], rows >= 0, columns > 0 else {
            throw .malformedFile(path: path, offset: headerStart, reason: "expected a 2-D shape, found \(shapeText)")
        }
        let itemSize = dtype == .uint8 ? 1 : dtype == .float64 || dtype == .int64 ? 8 : 4
        let dataOffset = headerStart + headerLength
        // A hostile shape must not overflow: every step is checked.
        let (rowBytes, o1) = columns.multipliedReportingOverflow(by: itemSize)
        let (bytes, o2) = rows.multipliedReportingOverflow(by: rowBytes)
        let (end, o3) = dataOffset.addingReportingOverflow(bytes)
        guard !o1, !o2, !o3, end == file.bytes.count else {
            throw .malformedFile(path: path, offset: o1 || o2 || o3 ? headerStart : min(file.bytes.count, end),
                                 reason: "the header promises \(rows) × \(columns) values, the file holds \(file.bytes.count - dataOffset) bytes of data")
        }
        guard dataOffset % 8 == 0 else {
            throw .malformedFile(path: path, offset: dataOffset, reason: "misaligned data")
        }
        self.dtype = dtype
        self.rows = rows
        self.columns = columns
        self.dataOffset = dataOffset
    }

    func view<Element>(of file: MappedFile) -> Matrix<Element> {
        let start = (file.bytes.baseAddress! + dataOffset).assumingMemoryBound(to: Element.self)
        return Matrix(base: start, rows: rows, columns: columns, rowStride: columns, owner: file)
    }

    /// The text after `'key':` up to the next top-level comma or closing brace.
    static func value(of key: String, in header: String) -> String? {
        guard let keyRange = header.firstRange(of: "'\(key)':") else { return nil }
        var depth = 0
        var result = ""
        for character in header[keyRange.upperBound...] {
            if character == "(" { depth += 1 }
            if character == ")" { depth -= 1 }
            if depth == 0 && (character == "," || character == "}") { break }
            result.append(character)
            if depth < 0 { return nil }
        }
        return result.trimmingSpaces
    }
}

extension String {
    var trimmingSpaces: String {
        String(self.drop(while: { $0 == " " }).reversed().drop(while: { $0 == " " }).reversed())
    }
    var trimmingQuotes: String {
        String(self.trimmingSpaces.filter { $0 != "'" && $0 != "\"" })
    }
}
