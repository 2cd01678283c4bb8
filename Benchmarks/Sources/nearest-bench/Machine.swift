import Foundation
import Nearest

/// What a result depends on besides the code: the CPU, the BLAS and its kernel, the load.
struct Machine: Codable {
    var cpu: String
    var cores: Int
    var kernel: String
    var instructionSet: String
    var openMP: Bool
    var blasConfig: String
    var blasCore: String
    /// OPENBLAS_CORETYPE as set for this run (nil: OpenBLAS chose by itself).
    var openblasCoretype: String?
    var swiftNearestVersion: String
    /// `git describe --always --dirty` of the repository measured.
    var commit: String
    var loadAverageBefore: String
    var loadAverageAfter: String?
    var date: String

    static func current() -> Machine {
        let environment = ProcessInfo.processInfo.environment
        return Machine(
            cpu: cpuModel(), cores: Runtime.hardwareThreads, kernel: readLine("/proc/sys/kernel/osrelease") ?? "?",
            instructionSet: Runtime.instructionSet.rawValue, openMP: Runtime.openMP,
            blasConfig: BLAS.config.trimmingCharacters(in: .whitespaces), blasCore: BLAS.coreName,
            openblasCoretype: environment["OPENBLAS_CORETYPE"], swiftNearestVersion: Runtime.version, commit: gitDescribe(),
            loadAverageBefore: loadAverage(), loadAverageAfter: nil,
            date: ISO8601DateFormatter().string(from: Date()))
    }

    /// The 1-, 5- and 15-minute load averages: a reading above ~0.3 before a run means
    /// something else (a build) shares the cores and the figures are suspect.
    static func loadAverage() -> String {
        (readLine("/proc/loadavg") ?? "?").split(separator: " ").prefix(3).joined(separator: " ")
    }

    static func cpuModel() -> String {
        guard let text = try? String(contentsOfFile: "/proc/cpuinfo", encoding: .utf8) else { return "?" }
        for line in text.split(separator: "\n") where line.hasPrefix("model name") {
            return line.split(separator: ":", maxSplits: 1).last.map { $0.trimmingCharacters(in: .whitespaces) } ?? "?"
        }
        return "?"
    }

    static func gitDescribe() -> String {
        let git = Process()
        git.executableURL = URL(fileURLWithPath: "/usr/bin/env")
        git.arguments = ["git", "-C", Paths.repositoryRoot, "describe", "--always", "--dirty"]
        let pipe = Pipe()
        git.standardOutput = pipe
        git.standardError = FileHandle.nullDevice
        guard (try? git.run()) != nil else { return "?" }
        git.waitUntilExit()
        let text = String(decoding: pipe.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self)
        return text.trimmingCharacters(in: .whitespacesAndNewlines)
    }

    private static func readLine(_ path: String) -> String? {
        (try? String(contentsOfFile: path, encoding: .utf8))?.trimmingCharacters(in: .whitespacesAndNewlines)
    }
}
