#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

#if canImport(Glibc)
private let systemWrite = Glibc.write
#else
private let systemWrite = Darwin.write
#endif

/// Writes a file so that a crash at any moment leaves either the old file or the complete new
/// one: a temporary file in the same directory, fsync, rename over the target, fsync of the
/// directory (which makes the rename itself durable).
///
/// Replacing a file keeps what the user set on it: a symbolic link is written through (its
/// target is replaced, the link stays), the old file's permission bits carry over, and a file
/// the user may not write is refused rather than replaced.
final class AtomicFile {
    let path: String
    private let fd: Int32
    private(set) var written = 0

    private init(path: String, fd: Int32) {
        self.path = path
        self.fd = fd
    }

    static func write(to path: String, _ body: (AtomicFile) throws(NearestError) -> Void) throws(NearestError) {
        var target = path
        var mode: mode_t = 0o644
        var info = stat()
        if lstat(path, &info) == 0 {
            if (info.st_mode & S_IFMT) == S_IFLNK, let resolved = realpath(path, nil) {
                target = String(cString: resolved)
                free(resolved)
                guard stat(target, &info) == 0 else { throw .io(path: target, operation: "stat", errno: errno) }
            }
            guard access(target, W_OK) == 0 else { throw .io(path: target, operation: "replace", errno: EACCES) }
            mode = info.st_mode & 0o7777
        }
        let temporary = "\(target).tmp-\(getpid())-\(UInt32.random(in: 0 ... .max))"
        let fd = open(temporary, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0o600)
        guard fd >= 0 else { throw .io(path: temporary, operation: "create", errno: errno) }
        fchmod(fd, mode)  // the old file's bits (not narrowed by the umask, as a create's would be)
        let file = AtomicFile(path: temporary, fd: fd)
        do throws(NearestError) {
            try body(file)
            guard fsync(fd) == 0 else { throw .io(path: temporary, operation: "flush", errno: errno) }
        } catch {
            close(fd)
            unlink(temporary)
            throw error
        }
        guard close(fd) == 0 else {
            let code = errno
            unlink(temporary)
            throw .io(path: temporary, operation: "close", errno: code)
        }
        guard rename(temporary, target) == 0 else {
            let code = errno
            unlink(temporary)
            throw .io(path: target, operation: "rename into place", errno: code)
        }
        let directory = target.lastIndex(of: "/").map { String(target[..<$0]) } ?? "."
        let dirfd = open(directory.isEmpty ? "/" : directory, O_RDONLY | O_DIRECTORY | O_CLOEXEC)
        if dirfd >= 0 {  // the rename is done; a directory that cannot be flushed only weakens durability
            fsync(dirfd)
            close(dirfd)
        }
    }

    func write(_ bytes: UnsafeRawBufferPointer) throws(NearestError) {
        var done = 0
        while done < bytes.count {
            let n = systemWrite(fd, bytes.baseAddress! + done, bytes.count - done)
            if n < 0 {
                if errno == EINTR { continue }
                throw .io(path: path, operation: "write", errno: errno)
            }
            done += n
        }
        written += bytes.count
    }

    func write(_ bytes: [UInt8]) throws(NearestError) {
        var failure: NearestError?
        bytes.withUnsafeBytes { buffer in
            do throws(NearestError) { try write(buffer) } catch { failure = error }
        }
        if let failure { throw failure }
    }

    /// Writes zeros up to byte `offset`.
    func pad(to offset: Int) throws(NearestError) {
        try write([UInt8](repeating: 0, count: max(0, offset - written)))
    }
}
