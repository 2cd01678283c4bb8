#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// A fresh directory under `$TMPDIR` (or /tmp), removed with everything in it when the last
/// reference goes.
public final class TemporaryDirectory: Sendable {
    public let path: String

    public init(prefix: String = "nearest-tests") throws(TemporaryDirectory.Failure) {
        let parent = getenv("TMPDIR").map { String(cString: $0) } ?? "/tmp"
        var template = Array("\(parent)/\(prefix).XXXXXX".utf8CString)
        guard let made = template.withUnsafeMutableBufferPointer({ mkdtemp($0.baseAddress!) }) else {
            throw Failure(operation: "mkdtemp", path: parent, errno: errno)
        }
        path = String(cString: made)
    }

    deinit { Self.remove(path) }

    /// The path of `name` inside this directory.
    public func path(_ name: String) -> String { path + "/" + name }

    /// Writes `bytes` to `name` (replacing it) and returns its path.
    @discardableResult
    public func write(_ bytes: [UInt8], to name: String) throws(TemporaryDirectory.Failure) -> String {
        let file = path(name)
        let fd = open(file, O_WRONLY | O_CREAT | O_TRUNC, 0o644)
        guard fd >= 0 else { throw Failure(operation: "open", path: file, errno: errno) }
        defer { close(fd) }
        var written = 0
        while written < bytes.count {
            let n = bytes.withUnsafeBytes { Glibc.write(fd, $0.baseAddress! + written, $0.count - written) }
            guard n > 0 else { throw Failure(operation: "write", path: file, errno: errno) }
            written += n
        }
        return file
    }

    /// Creates a subdirectory and returns its path.
    @discardableResult
    public func makeDirectory(_ name: String) throws(TemporaryDirectory.Failure) -> String {
        let directory = path(name)
        guard mkdir(directory, 0o755) == 0 else { throw Failure(operation: "mkdir", path: directory, errno: errno) }
        return directory
    }

    public struct Failure: Error, CustomStringConvertible {
        public let operation: String
        public let path: String
        public let errno: Int32
        public var description: String { "\(operation) \(path): \(String(cString: strerror(errno)))" }
    }

    private static func remove(_ path: String) {
        guard let directory = opendir(path) else { return }
        while let entry = readdir(directory) {
            let name = withUnsafeBytes(of: entry.pointee.d_name) { String(cString: $0.bindMemory(to: CChar.self).baseAddress!) }
            guard name != "." && name != ".." else { continue }
            let child = path + "/" + name
            var info = stat()
            if lstat(child, &info) == 0 && (info.st_mode & S_IFMT) == S_IFDIR { remove(child) } else { unlink(child) }
        }
        closedir(directory)
        rmdir(path)
    }
}
