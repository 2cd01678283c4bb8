#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif
import Nearest
import NearestTestSupport
import Testing

/// The byte offset of the `.malformedFile` error `body` throws for `path`; records an issue
/// (and returns nil) when it throws anything else or nothing.
private func malformedOffset<T>(_ path: String, sourceLocation: SourceLocation = #_sourceLocation,
                                _ body: () throws(NearestError) -> T) -> Int? {
    do {
        _ = try body()
        Issue.record("expected .malformedFile for \(path), but it was read", sourceLocation: sourceLocation)
    } catch let .malformedFile(errorPath, offset, _) {
        #expect(errorPath == path, sourceLocation: sourceLocation)
        return offset
    } catch {
        Issue.record("expected .malformedFile for \(path), got \(error)", sourceLocation: sourceLocation)
    }
    return nil
}

private func bits(_ matrix: Matrix<Float>) -> [[UInt32]] {
    (0 ..< matrix.rows).map { matrix[$0].map(\.bitPattern) }
}

private typealias Bytes = VectorFileBytes

@Suite("Vector files: well-formed files read back exactly")
struct VectorFileRoundTripTests {
    /// Values that a sloppy reader would lose: signed zero, subnormals, extremes, odd bits.
    static let awkward: [[Float]] = [
        [0, -0.0, .leastNonzeroMagnitude, -.leastNormalMagnitude, .greatestFiniteMagnitude],
        [1, -1.5, 3.1415927, 1e-20, -65504],
        [Float(bitPattern: 0x3F80_0001), 0.1, -0.2, 7, 123_456_789],
    ]

    @Test(".fvecs reads back bit for bit, viewed in place with the length fields between rows")
    func fvecsRoundTrip() throws {
        let directory = try TemporaryDirectory()
        let path = try directory.write(Bytes.fvecs(Self.awkward), to: "awkward.fvecs")
        let matrix = try VectorFile.readFloats(path)
        #expect(matrix.rows == 3 && matrix.columns == 5)
        #expect(matrix.rowStride == 6)
        #expect(bits(matrix) == Self.awkward.map { $0.map(\.bitPattern) })
        #expect(bits(matrix.rows(1 ..< 3)) == Self.awkward[1...].map { $0.map(\.bitPattern) })
    }

    @Test(".fvecs with a single one-value row reads as a 1 × 1 matrix")
    func fvecsSingleValue() throws {
        let directory = try TemporaryDirectory()
        let path = try directory.write(Bytes.fvecs([[42.5]]), to: "one.fvecs")
        let matrix = try VectorFile.readFloats(path)
        #expect(matrix.rows == 1 && matrix.columns == 1 && matrix[0] == [42.5])
    }

    @Test(".ivecs reads back exactly as Int32 (extremes included) and converts to Float")
    func ivecsRoundTrip() throws {
        let rows: [[Int32]] = [[0, 1, -1, .max, .min, 99], [7, 6, 5, 4, 3, 2]]
        let directory = try TemporaryDirectory()
        let path = try directory.write(Bytes.ivecs(rows), to: "ids.ivecs")
        let ids = try VectorFile.readInt32s(path)
        #expect(ids.rows == 2 && ids.columns == 6)
        #expect((0 ..< 2).map { ids[$0] } == rows)
        let floats = try VectorFile.readFloats(path)
        #expect((0 ..< 2).map { floats[$0] } == rows.map { $0.map(Float.init) })
    }

    @Test(".bvecs reads every byte value 0…255 as its Float, odd row length")
    func bvecsRoundTrip() throws {
        let all = (0 ... 255).map(UInt8.init)
        let rows = stride(from: 0, to: 252, by: 7).map { Array(all[$0 ..< $0 + 7]) } + [[255, 254, 253, 252, 0, 1, 128]]
        let directory = try TemporaryDirectory()
        let path = try directory.write(Bytes.bvecs(rows), to: "bytes.bvecs")
        let matrix = try VectorFile.readFloats(path)
        #expect(matrix.rows == rows.count && matrix.columns == 7)
        #expect((0 ..< matrix.rows).map { matrix[$0] } == rows.map { $0.map(Float.init) })
    }

    @Test(".npy '<f4' (v1 and v2 headers) reads back bit for bit, with the data on a 64-byte boundary",
          arguments: [UInt8(1), 2])
    func npyFloat32(major: UInt8) throws {
        let directory = try TemporaryDirectory()
        let flat = Self.awkward.flatMap { $0 }
        let path = try directory.write(Bytes.npy(descr: "<f4", shape: [3, 5], data: Bytes.littleEndian(flat), major: major),
                                       to: "f4.npy")
        let matrix = try VectorFile.readFloats(path)
        #expect(matrix.rows == 3 && matrix.columns == 5 && matrix.rowStride == 5)
        #expect(bits(matrix) == Self.awkward.map { $0.map(\.bitPattern) })
    }

    @Test(".npy '<f8' converts each double to the nearest Float")
    func npyFloat64() throws {
        let values: [Double] = [0, -0.0, 1.5, -2.25, 0.1, 1e300, -1e-300, 16_777_217]
        let directory = try TemporaryDirectory()
        let path = try directory.write(Bytes.npy(descr: "<f8", shape: [2, 4], data: Bytes.littleEndian(values)), to: "f8.npy")
        let matrix = try VectorFile.readFloats(path)
        #expect(matrix.rows == 2 && matrix.columns == 4)
        #expect(matrix.elements.map(\.bitPattern) == values.map { Float($0).bitPattern })
    }

    @Test(".npy '<i4' reads back exactly as Int32 and as Float")
    func npyInt32() throws {
        let values: [Int32] = [0, -1, 1, .max, .min, 12345]
        let directory = try TemporaryDirectory()
        let path = try directory.write(Bytes.npy(descr: "<i4", shape: [3, 2], data: Bytes.littleEndian(values)), to: "i4.npy")
        let ids = try VectorFile.readInt32s(path)
        #expect(ids.rows == 3 && ids.columns == 2)
        #expect((0 ..< 3).flatMap { ids[$0] } == values)
        #expect(try VectorFile.readFloats(path).elements == values.map(Float.init))
    }

    @Test(".npy '<i8' ids that fit in 32 bits read back exactly; one that does not is rejected")
    func npyInt64() throws {
        let values: [Int64] = [0, 9, Int64(Int32.max), Int64(Int32.min), 5, 6]
        let directory = try TemporaryDirectory()
        let path = try directory.write(Bytes.npy(descr: "<i8", shape: [2, 3], data: Bytes.littleEndian(values)), to: "i8.npy")
        let ids = try VectorFile.readInt32s(path)
        #expect(ids.rows == 2 && ids.columns == 3)
        #expect(ids.elements == values.map { Int32($0) })
        #expect(try VectorFile.readFloats(path).elements == values.map(Float.init))

        let tooBig = try directory.write(Bytes.npy(descr: "<i8", shape: [1, 2], data: Bytes.littleEndian([Int64(1), 1 << 32])),
                                         to: "big.npy")
        #expect(malformedOffset(tooBig) { () throws(NearestError) in try VectorFile.readInt32s(tooBig) } == 0)
    }

    @Test(".npy '|u1' (and its alias '<u1') reads every byte value as Float and as Int32",
          arguments: ["|u1", "<u1"])
    func npyUInt8(descr: String) throws {
        let values = (0 ... 255).map(UInt8.init)
        let directory = try TemporaryDirectory()
        let path = try directory.write(Bytes.npy(descr: descr, shape: [16, 16], data: values), to: "u1.npy")
        #expect(try VectorFile.readFloats(path).elements == values.map(Float.init))
        let ids = try VectorFile.readInt32s(path)
        #expect((0 ..< 16).flatMap { ids[$0] } == values.map(Int32.init))
    }

    @Test(".npy with zero rows reads as an empty matrix of the right width")
    func npyZeroRows() throws {
        let directory = try TemporaryDirectory()
        let path = try directory.write(Bytes.npy(descr: "<f4", shape: [0, 8], data: []), to: "empty.npy")
        let matrix = try VectorFile.readFloats(path)
        #expect(matrix.rows == 0 && matrix.columns == 8)
    }

    @Test("the extension is matched without regard to case")
    func extensionCaseInsensitive() throws {
        let directory = try TemporaryDirectory()
        let path = try directory.write(Bytes.fvecs([[1, 2]]), to: "UPPER.FVECS")
        #expect(try VectorFile.readFloats(path)[0] == [1, 2])
    }

    @Test("reading integers from a float file is refused at offset 0")
    func integersFromFloatFile() throws {
        let directory = try TemporaryDirectory()
        let fvecs = try directory.write(Bytes.fvecs([[1, 2]]), to: "x.fvecs")
        let npy = try directory.write(Bytes.npy(descr: "<f4", shape: [1, 2], data: Bytes.littleEndian([Float(1), 2])), to: "x.npy")
        #expect(malformedOffset(fvecs) { () throws(NearestError) in try VectorFile.readInt32s(fvecs) } == 0)
        #expect(malformedOffset(npy) { () throws(NearestError) in try VectorFile.readInt32s(npy) } == 0)
    }
}

@Suite("Vector files: hostile files are rejected at the right byte")
struct VectorFileHostileTests {
    let directory: TemporaryDirectory
    init() throws { directory = try TemporaryDirectory() }

    private func offset(writing bytes: [UInt8], to name: String,
                        sourceLocation: SourceLocation = #_sourceLocation) throws -> Int? {
        let path = try directory.write(bytes, to: name)
        return malformedOffset(path, sourceLocation: sourceLocation) { () throws(NearestError) in
            try VectorFile.readFloats(path)
        }
    }

    @Test("an empty file is malformed at offset 0", arguments: ["e.fvecs", "e.ivecs", "e.bvecs", "e.npy"])
    func emptyFile(name: String) throws {
        #expect(try offset(writing: [], to: name) == 0)
    }

    @Test("a file shorter than one length field is malformed at offset 0")
    func shorterThanLengthField() throws {
        #expect(try offset(writing: [4, 0], to: "short.fvecs") == 0)
    }

    @Test("a truncated last .fvecs record is reported at the start of that record")
    func truncatedLastRecord() throws {
        let rows: [[Float]] = [[1, 2, 3, 4], [5, 6, 7, 8], [9, 10, 11, 12], [13, 14, 15, 16]]
        let bytes = Bytes.fvecs(rows)  // 4 records of 20 bytes
        #expect(try offset(writing: Array(bytes.dropLast(10)), to: "cut.fvecs") == 60)
        #expect(try offset(writing: Array(bytes.dropLast(19)), to: "cut1.fvecs") == 60)
        #expect(try offset(writing: Array(bytes.dropLast(4)), to: "cut2.fvecs") == 60)
    }

    @Test("a truncated last .bvecs record is reported at the start of that record")
    func truncatedLastByteRecord() throws {
        let bytes = Bytes.bvecs([[1, 2, 3, 4, 5], [6, 7, 8, 9, 10], [11, 12, 13, 14, 15]])  // 9-byte records
        #expect(try offset(writing: Array(bytes.dropLast(2)), to: "cut.bvecs") == 18)
    }

    @Test("a record whose length field differs from the first is reported at that record's start")
    func differingLengthField() throws {
        var bytes = Bytes.fvecs([[1, 2, 3, 4], [5, 6, 7, 8], [9, 10, 11, 12]])
        bytes.replaceSubrange(40 ..< 44, with: Bytes.littleEndian([Int32(5)]))
        #expect(try offset(writing: bytes, to: "odd.fvecs") == 40)
        var ids = Bytes.ivecs([[1, 2], [3, 4], [5, 6]])
        ids.replaceSubrange(12 ..< 16, with: Bytes.littleEndian([Int32(-2)]))
        let path = try directory.write(ids, to: "odd.ivecs")
        #expect(malformedOffset(path) { () throws(NearestError) in try VectorFile.readInt32s(path) } == 12)
    }

    @Test("a shorter record in the middle of the file is reported at that record's start, not as truncation")
    func shorterMiddleRecord() throws {
        // Records of 4, 3 and 4 floats: 20 + 16 + 20 bytes. The odd record starts at byte 20.
        let bytes = Bytes.fvecs([[1, 2, 3, 4], [5, 6, 7], [9, 10, 11, 12]])
        let reported = try offset(writing: bytes, to: "mixed.fvecs")
        #expect(reported == 20)
    }

    @Test("a non-positive first length field is malformed at offset 0", arguments: [Int32(0), -1, -128, .min])
    func nonPositiveDimension(dim: Int32) throws {
        let bytes = Bytes.record(length: dim, Bytes.littleEndian([Float(1), 2, 3, 4]))
        #expect(try offset(writing: bytes, to: "dim.fvecs") == 0)
        #expect(try offset(writing: bytes, to: "dim.bvecs") == 0)
    }

    @Test("a .npy file with bad magic is malformed at offset 0")
    func npyBadMagic() throws {
        var bytes = Bytes.npy(descr: "<f4", shape: [1, 2], data: Bytes.littleEndian([Float(1), 2]))
        bytes[1] = UInt8(ascii: "n")
        #expect(try offset(writing: bytes, to: "magic.npy") == 0)
        #expect(try offset(writing: Array(bytes.prefix(8)), to: "stub.npy") == 0)
    }

    @Test("a .npy version other than 1, 2 or 3 is malformed at the version byte (6)")
    func npyUnknownVersion() throws {
        var bytes = Bytes.npy(descr: "<f4", shape: [1, 2], data: Bytes.littleEndian([Float(1), 2]))
        bytes[6] = 4
        #expect(try offset(writing: bytes, to: "v4.npy") == 6)
    }

    @Test("a .npy header longer than the file is malformed at the header start (10)")
    func npyHeaderPastEnd() throws {
        var bytes = Bytes.npy(descr: "<f4", shape: [1, 2], data: [])
        bytes.replaceSubrange(8 ..< 10, with: Bytes.littleEndian([UInt16(1000)]))
        #expect(try offset(writing: bytes, to: "long-header.npy") == 10)
    }

    @Test("a .npy dtype other than little-endian f4, f8, i4, i8 or u1 is malformed at the header start (10)",
          arguments: [">f4", "<f2", "<c8", "|b1", ">i4", "<U8"])
    func npyUnsupportedDType(descr: String) throws {
        let bytes = Bytes.npy(descr: descr, shape: [1, 2], data: [UInt8](repeating: 0, count: 8))
        #expect(try offset(writing: bytes, to: "dtype.npy") == 10)
    }

    @Test("a Fortran-order .npy is malformed at the header start (10)")
    func npyFortranOrder() throws {
        let bytes = Bytes.npy(descr: "<f4", shape: [2, 2], fortranOrder: true, data: Bytes.littleEndian([Float(1), 2, 3, 4]))
        #expect(try offset(writing: bytes, to: "fortran.npy") == 10)
    }

    @Test("a .npy shape that is not 2-D is malformed at the header start (10)",
          arguments: [[2, 2, 1], [4], [2, 0]])
    func npyNot2D(shape: [Int]) throws {
        let bytes = Bytes.npy(descr: "<f4", shape: shape, data: Bytes.littleEndian([Float(1), 2, 3, 4]))
        #expect(try offset(writing: bytes, to: "shape.npy") == 10)
    }

    @Test("a .npy with less data than its header promises is malformed where the data ends")
    func npyShortData() throws {
        let data = Bytes.littleEndian([Float](repeating: 1, count: 10))  // 40 of the 48 bytes promised
        let bytes = Bytes.npy(descr: "<f4", shape: [3, 4], data: data)
        #expect(try offset(writing: bytes, to: "short.npy") == bytes.count)
    }

    @Test("a .npy with more data than its header promises is malformed where the promised data ends")
    func npyLongData() throws {
        let data = Bytes.littleEndian([Float](repeating: 1, count: 6))  // 24 bytes, 16 promised
        let bytes = Bytes.npy(descr: "<f4", shape: [2, 2], data: data)
        let dataOffset = bytes.count - data.count
        #expect(dataOffset % 64 == 0)
        #expect(try offset(writing: bytes, to: "long.npy") == dataOffset + 16)
    }

    @Test("a .npy shape whose byte count overflows is rejected, not a crash")
    func npyOverflowingShape() async throws {
        let path = try directory.write(Bytes.npy(header: "{'descr': '<f8', 'fortran_order': False, 'shape': (1, 2305843009213693952), }",
                                                 data: [UInt8](repeating: 0, count: 64)), to: "overflow.npy")
        await #expect(processExitsWith: .success) { [path = path as String] in
            do {
                _ = try VectorFile.readFloats(path)
                exit(1)  // read a file that cannot exist
            } catch NearestError.malformedFile {
                exit(0)
            } catch {
                exit(2)
            }
        }
    }

    @Test("an unknown extension is malformed at offset 0")
    func unknownExtension() throws {
        #expect(try offset(writing: Bytes.fvecs([[1, 2]]), to: "vectors.txt") == 0)
        #expect(try offset(writing: Bytes.fvecs([[1, 2]]), to: "vectors.fvecs.gz") == 0)
    }

    @Test("a directory is malformed at offset 0 (not a regular file)")
    func directoryIsNotAFile() throws {
        let path = try directory.makeDirectory("folder.fvecs")
        #expect(malformedOffset(path) { () throws(NearestError) in try VectorFile.readFloats(path) } == 0)
    }

    @Test("a missing file is an .io error from open with ENOENT")
    func missingFile() throws {
        let path = directory.path("absent.fvecs")
        #expect(throws: NearestError.io(path: path, operation: "open", errno: ENOENT)) {
            try VectorFile.readFloats(path)
        }
        #expect(throws: NearestError.io(path: path, operation: "open", errno: ENOENT)) {
            try VectorFile.readInt32s(path)
        }
    }
}

@Suite("Vector files: the shipped siftsmall dataset",
       .enabled(if: Datasets.siftsmall.isAvailable, Comment(rawValue: Datasets.siftsmall.missingMessage)))
struct SiftsmallFileTests {
    @Test("siftsmall reads as 10,000 × 128 base, 100 × 128 queries and 100 × 100 ground truth")
    func shapes() throws {
        let (base, queries, truth) = try Datasets.siftsmall.load()
        #expect(base.rows == 10_000 && base.columns == 128)
        #expect(queries.rows == 100 && queries.columns == 128)
        #expect(truth.rows == 100 && truth.columns == 100)
    }

    @Test("siftsmall's mapped rows agree with an independent decoding of the file's bytes")
    func rowsMatchBytes() throws {
        let dataset = Datasets.siftsmall
        for (path, check) in [(dataset.basePath, [0, 1, 4_999, 9_999]), (dataset.queryPath, [0, 50, 99])] {
            let matrix = try VectorFile.readFloats(path)
            let bytes = try #require(VectorFileBytes.contents(of: path))
            let record = 4 + 4 * matrix.columns
            #expect(bytes.count == matrix.rows * record)
            for row in check {
                #expect(VectorFileBytes.load(Int32.self, from: bytes, at: row * record) == 128)
                let expected = (0 ..< 128).map {
                    Float(bitPattern: VectorFileBytes.load(UInt32.self, from: bytes, at: row * record + 4 + 4 * $0))
                }
                #expect(matrix[row] == expected, "row \(row) of \(path)")
            }
        }
        let truth = try VectorFile.readInt32s(dataset.groundTruthPath)
        #expect(truth.elements.allSatisfy { $0 >= 0 && $0 < 10_000 })
        #expect((0 ..< truth.rows).allSatisfy { Set(truth[$0]).count == truth.columns }, "ids within a row are distinct")
    }
}

extension Matrix where Element == Int32 {
    var elements: [Int32] { (0 ..< rows).flatMap { self[$0] } }
}
