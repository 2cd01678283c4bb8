#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// A whole file mapped read-only into memory; unmapped when the last reference goes.
/// Pages come in on demand, so opening a large file costs nothing until it is read.
final class MappedFile: @unchecked Sendable {
    let path: String
    let bytes: UnsafeRawBufferPointer

    init(path: String) throws(NearestError) {
        self.path = path
        let fd = open(path, O_RDONLY)
        guard fd >= 0 else { throw .io(path: path, operation: "open", errno: errno) }
        defer { close(fd) }
        var info = stat()
        guard fstat(fd, &info) == 0 else { throw .io(path: path, operation: "stat", errno: errno) }
        guard (info.st_mode & S_IFMT) == S_IFREG else {
            throw .malformedFile(path: path, offset: 0, reason: "not a regular file")
        }
        let size = Int(info.st_size)
        guard size > 0 else { throw .malformedFile(path: path, offset: 0, reason: "the file is empty") }
        guard let address = mmap(nil, size, PROT_READ, MAP_PRIVATE, fd, 0), address != MAP_FAILED else {
            throw .io(path: path, operation: "map", errno: errno)
        }
        bytes = UnsafeRawBufferPointer(start: address, count: size)
    }

    deinit { munmap(UnsafeMutableRawPointer(mutating: bytes.baseAddress), bytes.count) }

    /// A little-endian value at `offset`, or an error naming the offset if the file ends first.
    func load<T: FixedWidthInteger>(_ type: T.Type, at offset: Int) throws(NearestError) -> T {
        guard offset >= 0, offset + MemoryLayout<T>.size <= bytes.count else {
            throw .malformedFile(path: path, offset: offset,
                                 reason: "the file ends inside a \(MemoryLayout<T>.size)-byte field")
        }
        return T(littleEndian: bytes.loadUnaligned(fromByteOffset: offset, as: T.self))
    }
}
