/// Builds the bytes of vector files by hand, so tests can write exactly the well-formed and
/// the hostile files they need.
public enum VectorFileBytes {
    /// Little-endian bytes of `values`.
    public static func littleEndian<T: FixedWidthInteger>(_ values: [T]) -> [UInt8] {
        values.flatMap { value in
            withUnsafeBytes(of: value.littleEndian) { Array($0) }
        }
    }

    public static func littleEndian(_ values: [Float]) -> [UInt8] { littleEndian(values.map(\.bitPattern)) }
    public static func littleEndian(_ values: [Double]) -> [UInt8] { littleEndian(values.map(\.bitPattern)) }

    /// One TEXMEX record: a little-endian int32 length, then the element bytes as given.
    public static func record(length: Int32, _ elements: [UInt8]) -> [UInt8] {
        littleEndian([length]) + elements
    }

    public static func fvecs(_ rows: [[Float]]) -> [UInt8] {
        rows.flatMap { record(length: Int32($0.count), littleEndian($0)) }
    }

    public static func ivecs(_ rows: [[Int32]]) -> [UInt8] {
        rows.flatMap { record(length: Int32($0.count), littleEndian($0)) }
    }

    public static func bvecs(_ rows: [[UInt8]]) -> [UInt8] {
        rows.flatMap { record(length: Int32($0.count), $0) }
    }

    /// A `.npy` file: magic, version, header length, a Python-dict header padded with spaces and
    /// a newline so the data starts on a 64-byte boundary (as NumPy writes it), then `data`.
    public static func npy(descr: String, shape: [Int], fortranOrder: Bool = false,
                           data: [UInt8], major: UInt8 = 1) -> [UInt8] {
        let shapeText = shape.count == 1 ? "(\(shape[0]),)" : "(" + shape.map(String.init).joined(separator: ", ") + ")"
        let dict = "{'descr': '\(descr)', 'fortran_order': \(fortranOrder ? "True" : "False"), 'shape': \(shapeText), }"
        return npy(header: dict, data: data, major: major)
    }

    /// A `.npy` file around a header dictionary given verbatim.
    public static func npy(header dict: String, data: [UInt8], major: UInt8 = 1) -> [UInt8] {
        let prefix = major == 1 ? 10 : 12
        var header = Array(dict.utf8)
        let total = (prefix + header.count + 1 + 63) / 64 * 64
        header += [UInt8](repeating: UInt8(ascii: " "), count: total - prefix - header.count - 1) + [UInt8(ascii: "\n")]
        let length = major == 1 ? littleEndian([UInt16(header.count)]) : littleEndian([UInt32(header.count)])
        return [0x93] + Array("NUMPY".utf8) + [major, 0] + length + header + data
    }
}

#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

extension VectorFileBytes {
    /// The whole contents of the file at `path` (nil if it cannot be read), read with plain
    /// `read(2)` so tests can check the memory-mapped readers against an independent decoding.
    public static func contents(of path: String) -> [UInt8]? {
        let fd = open(path, O_RDONLY)
        guard fd >= 0 else { return nil }
        defer { close(fd) }
        var bytes = [UInt8]()
        var chunk = [UInt8](repeating: 0, count: 1 << 16)
        while true {
            let n = chunk.withUnsafeMutableBytes { read(fd, $0.baseAddress!, $0.count) }
            guard n >= 0 else { return nil }
            if n == 0 { return bytes }
            bytes += chunk[0 ..< n]
        }
    }

    /// The little-endian value of type `T` at byte `offset` of `bytes`.
    public static func load<T: FixedWidthInteger>(_ type: T.Type, from bytes: [UInt8], at offset: Int) -> T {
        var value = T.zero
        for i in 0 ..< MemoryLayout<T>.size { value |= T(truncatingIfNeeded: bytes[offset + i]) << (8 * i) }
        return value
    }
}
