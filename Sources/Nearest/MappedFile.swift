#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// A whole file's bytes: mapped read-only into memory (pages come in on demand, so opening a
/// large file costs nothing until it is read), or with `reading`, read into memory of its own
/// (a program that rewrites the file meanwhile cannot pull pages from under it: a mapped page
/// past a truncation kills the process with SIGBUS), or with `copyOnWrite`, mapped privately
/// and writable (a page written is copied first; the file never changes). Released when the
/// last reference goes.
final class MappedFile: @unchecked Sendable {
    let path: String
    let bytes: UnsafeRawBufferPointer
    private let isMapped: Bool

    init(path: String, reading: Bool = false, copyOnWrite: Bool = false) throws(NearestError) {
        self.path = path
        // Non-blocking: opening a FIFO would otherwise wait for a writer; fstat refuses it below.
        let fd = open(path, O_RDONLY | O_NONBLOCK)
        guard fd >= 0 else { throw .io(path: path, operation: "open", errno: errno) }
        defer { close(fd) }
        var info = stat()
        guard fstat(fd, &info) == 0 else { throw .io(path: path, operation: "stat", errno: errno) }
        guard (info.st_mode & S_IFMT) == S_IFREG else {
            throw .malformedFile(path: path, offset: 0, reason: "not a regular file")
        }
        let size = Int(info.st_size)
        guard size > 0 else { throw .malformedFile(path: path, offset: 0, reason: "the file is empty") }
        isMapped = !reading
        if reading {
            let buffer = UnsafeMutableRawBufferPointer.allocate(byteCount: size, alignment: 64)
            var done = 0
            while done < size {
                let n = pread(fd, buffer.baseAddress! + done, size - done, off_t(done))
                if n < 0 && errno == EINTR { continue }
                guard n > 0 else {
                    let code = errno
                    buffer.deallocate()
                    if n < 0 { throw .io(path: path, operation: "read", errno: code) }
                    throw .malformedFile(path: path, offset: done, reason: "the file shrank while it was read")
                }
                done += n
            }
            bytes = UnsafeRawBufferPointer(buffer)
            return
        }
        let protection = copyOnWrite ? PROT_READ | PROT_WRITE : PROT_READ
        guard let address = mmap(nil, size, protection, MAP_PRIVATE, fd, 0), address != MAP_FAILED else {
            throw .io(path: path, operation: "map", errno: errno)
        }
        bytes = UnsafeRawBufferPointer(start: address, count: size)
    }

    deinit {
        if isMapped { munmap(UnsafeMutableRawPointer(mutating: bytes.baseAddress), bytes.count) }
        else { bytes.deallocate() }
    }

    /// A little-endian value at `offset`, or an error naming the offset if the file ends first.
    func load<T: FixedWidthInteger>(_ type: T.Type, at offset: Int) throws(NearestError) -> T {
        guard offset >= 0, offset + MemoryLayout<T>.size <= bytes.count else {
            throw .malformedFile(path: path, offset: offset,
                                 reason: "the file ends inside a \(MemoryLayout<T>.size)-byte field")
        }
        return T(littleEndian: bytes.loadUnaligned(fromByteOffset: offset, as: T.self))
    }
}
