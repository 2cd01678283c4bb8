#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif
import Synchronization

/// A readers-writer lock: searches share it, changes to an index take it alone.
/// It is what makes the indexes' `Sendable` conformance honest.
package final class ReadWriteLock: @unchecked Sendable {
    private let lock: UnsafeMutablePointer<pthread_rwlock_t>
    /// Readers blocked on the lock (see `yieldToWaitingReaders`).
    private let waitingReaders = Atomic<Int>(0)

    /// With `preferringWriters`, a waiting writer holds back new readers, so that a stream of
    /// searches cannot starve it; such a lock must never be read twice on one thread.
    package init(preferringWriters: Bool = false) {
        lock = .allocate(capacity: 1)
        lock.initialize(to: pthread_rwlock_t())
        #if canImport(Glibc)
        if preferringWriters {
            var attributes = pthread_rwlockattr_t()
            pthread_rwlockattr_init(&attributes)
            pthread_rwlockattr_setkind_np(&attributes, Int32(PTHREAD_RWLOCK_PREFER_WRITER_NONRECURSIVE_NP))
            pthread_rwlock_init(lock, &attributes)
            pthread_rwlockattr_destroy(&attributes)
            return
        }
        #endif
        pthread_rwlock_init(lock, nil)
    }

    deinit {
        pthread_rwlock_destroy(lock)
        lock.deallocate()
    }

    package func reading<R, E: Error>(_ body: () throws(E) -> R) throws(E) -> R {
        waitingReaders.add(1, ordering: .relaxed)
        pthread_rwlock_rdlock(lock)
        waitingReaders.subtract(1, ordering: .relaxed)
        defer { pthread_rwlock_unlock(lock) }
        return try body()
    }

    /// For a writer between the turns of a long change, not holding the lock: lets readers
    /// already waiting take it first. (Unlocking wakes them, but a writer that locks again at
    /// once usually wins, and readers could wait out the whole change.) Gives up after 0.2 ms.
    package func yieldToWaitingReaders() {
        guard waitingReaders.load(ordering: .relaxed) > 0 else { return }
        let start = ContinuousClock.now
        while waitingReaders.load(ordering: .relaxed) > 0 && ContinuousClock.now - start < .microseconds(200) {
            sched_yield()
        }
    }

    package func writing<R, E: Error>(_ body: () throws(E) -> R) throws(E) -> R {
        pthread_rwlock_wrlock(lock)
        defer { pthread_rwlock_unlock(lock) }
        return try body()
    }
}

/// A pthread mutex guarding no value of its own: for code that takes turns over state kept
/// elsewhere. (Synchronization.Mutex would do, but ThreadSanitizer on Linux does not see its
/// lock, and reports races between correctly locked writers.)
package final class Mutex: @unchecked Sendable {
    private let mutex: UnsafeMutablePointer<pthread_mutex_t>

    package init() {
        mutex = .allocate(capacity: 1)
        mutex.initialize(to: pthread_mutex_t())
        pthread_mutex_init(mutex, nil)
    }

    deinit {
        pthread_mutex_destroy(mutex)
        mutex.deallocate()
    }

    package func withLock<R, E: Error>(_ body: () throws(E) -> R) throws(E) -> R {
        pthread_mutex_lock(mutex)
        defer { pthread_mutex_unlock(mutex) }
        return try body()
    }
}

/// A value behind a `Mutex`. (For turn-taking without a value, use `Mutex` itself:
/// ThreadSanitizer reports a zero-sized value's inout accesses as races with the object's header.)
package final class Locked<State>: @unchecked Sendable {
    private let mutex = Mutex()
    private var state: State

    package init(_ state: State) {
        self.state = state
    }

    package func withLock<R, E: Error>(_ body: (inout State) throws(E) -> R) throws(E) -> R {
        try mutex.withLock { () throws(E) -> R in try body(&state) }
    }
}

