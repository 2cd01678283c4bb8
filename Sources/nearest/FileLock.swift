#if canImport(Glibc)
import Glibc
#endif
import Nearest

/// Runs `body` holding an exclusive lock on the file at `path`, so that commands changing one
/// saved index take turns and each reads what the last one saved (two `nearest add` at once
/// would otherwise both read the old file, and the second save would drop the first's vectors).
/// A save replaces the file (a rename), so a command that waited finds a new file at the path:
/// it locks that one instead.
func withExclusiveAccess<R>(to path: String, _ body: () throws -> R) throws -> R {
    while true {
        let fd = open(path, O_RDONLY | O_NONBLOCK | O_CLOEXEC)
        guard fd >= 0 else { throw NearestError.io(path: path, operation: "open", errno: errno) }
        guard flock(fd, LOCK_EX) == 0 else {
            let code = errno
            close(fd)
            if code == EINTR { continue }
            throw NearestError.io(path: path, operation: "lock", errno: code)
        }
        var locked = stat(), current = stat()
        if fstat(fd, &locked) == 0, stat(path, &current) == 0,
           locked.st_ino == current.st_ino, locked.st_dev == current.st_dev {
            defer { close(fd) }  // closing releases the lock
            return try body()
        }
        close(fd)  // replaced while this command waited: lock the file there now
    }
}
