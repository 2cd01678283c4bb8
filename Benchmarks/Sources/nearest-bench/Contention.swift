import Foundation

/// How much CPU other processes took while a measurement ran, from /proc/stat (all busy time)
/// minus /proc/self/stat (this process's): the machine has 2 cores that builds share, and a
/// figure taken while a compiler ran is not a figure about this code.
struct CPUSample {
    let busyTicks: Int    // every process, all cores (user, nice, system, irq, softirq, steal)
    let ownTicks: Int     // this process, all its threads
    let time: ContinuousClock.Instant

    static func now() -> CPUSample {
        CPUSample(busyTicks: machineBusy(), ownTicks: processBusy(), time: .now)
    }

    /// Cores' worth of CPU used by other processes since `self` (0 on a quiet machine).
    func othersLoad(until end: CPUSample = .now()) -> Double {
        let elapsed = end.time - time
        let seconds = Double(elapsed.components.seconds) + Double(elapsed.components.attoseconds) * 1e-18
        guard seconds > 0 else { return 0 }
        let others = Double((end.busyTicks - busyTicks) - (end.ownTicks - ownTicks))
        return max(0, others / Double(Self.ticksPerSecond) / seconds)
    }

    private static let ticksPerSecond = Int(sysconf(Int32(_SC_CLK_TCK)))

    private static func machineBusy() -> Int {
        guard let text = try? String(contentsOfFile: "/proc/stat", encoding: .utf8),
              let line = text.split(separator: "\n").first else { return 0 }
        let fields = line.split(separator: " ").dropFirst().compactMap { Int($0) }
        guard fields.count >= 8 else { return 0 }
        // user nice system idle iowait irq softirq steal: everything but idle and iowait
        return fields[0] + fields[1] + fields[2] + fields[5] + fields[6] + fields[7]
    }

    private static func processBusy() -> Int {
        guard let text = try? String(contentsOfFile: "/proc/self/stat", encoding: .utf8),
              let close = text.lastIndex(of: ")") else { return 0 }
        // After "pid (comm)": state is field 3; utime and stime are fields 14 and 15.
        let fields = text[text.index(after: close)...].split(separator: " ")
        guard fields.count >= 13, let user = Int(fields[11]), let system = Int(fields[12]) else { return 0 }
        return user + system
    }

    /// Waits (up to `limit` seconds) for a second in which other processes use less than
    /// `threshold` cores; returns the last reading.
    @discardableResult
    static func waitForQuiet(threshold: Double, limit: Double) -> Double {
        let deadline = ContinuousClock.now + .milliseconds(Int(limit * 1000))
        var load = Double.infinity
        repeat {
            let start = CPUSample.now()
            Thread.sleep(forTimeInterval: 1)
            load = start.othersLoad()
        } while load >= threshold && ContinuousClock.now < deadline
        return load
    }
}
