import ArgumentParser
import Nearest

/// Reads ids from an .ivecs or integer .npy file (all values, row after row).
private func readIDs(_ path: String) throws(NearestError) -> [UInt64] {
    let matrix = try VectorFile.readInt32s(path)
    var ids: [UInt64] = []
    ids.reserveCapacity(matrix.rows * matrix.columns)
    for row in 0 ..< matrix.rows {
        for value in matrix[row] {
            guard value >= 0 else { throw NearestError.malformedFile(path: path, offset: 0, reason: "negative id \(value)") }
            ids.append(UInt64(value))
        }
    }
    return ids
}

struct AddCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "add",
        abstract: "Add (or replace, for ids already present) vectors in a saved index, and save it.")

    @Argument(help: "The saved index.") var index: String
    @Option(help: "Vectors to add (.fvecs, .bvecs or .npy).") var base: String
    @Option(help: "Their ids (.ivecs or .npy); by default ids follow the largest present.") var ids: String?
    @Option(help: "Worker threads; 0 means one per core.") var threads = 0
    @OptionGroup var output: OutputOptions

    func run() throws {
        try reportingErrors { try withExclusiveAccess(to: index) {
            let graph = try HNSWIndex(contentsOf: index, threads: threads)
            let vectors = try VectorFile.readFloats(base)
            let given = try ids.map { path throws(NearestError) in try readIDs(path) }
            let largest = graph.ids.max()
            let first = largest.map { $0 &+ 1 } ?? 0
            // Ids follow the largest present; past 2^64 - 1 they would wrap onto ids in use.
            guard given != nil || vectors.rows == 0
                    || (largest != UInt64.max && UInt64(vectors.rows - 1) <= UInt64.max - first) else {
                throw NearestError.invalidParameter(
                    "no room for \(vectors.rows) ids after the largest present, \(largest!): give them with --ids")
            }
            let newIDs = given ?? (0 ..< vectors.rows).map { first + UInt64($0) }
            let (_, seconds) = try timed { try graph.add(vectors, ids: newIDs) }
            try graph.save(to: index)
            var report = Report()
            report.add("added", vectors.rows)
            report.add("vectors", graph.count)
            report.add("seconds", seconds)
            report.print(json: output.json)
        } }
    }
}

struct RemoveCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "remove",
        abstract: "Remove vectors by id from a saved index, and save it. Unknown ids change nothing.")

    @Argument(help: "The saved index.") var index: String
    @Option(help: "Ids to remove (.ivecs or .npy).") var ids: String
    @OptionGroup var output: OutputOptions

    func run() throws {
        try reportingErrors { try withExclusiveAccess(to: index) {
            let graph = try HNSWIndex(contentsOf: index)
            let doomed = Set(try readIDs(ids))
            let known = doomed.filter(graph.contains)  // unknown ids change nothing
            for id in known { try graph.remove(id) }
            if !known.isEmpty { try graph.save(to: index) }
            var report = Report()
            report.add("removed", known.count)
            report.add("unknown", doomed.count - known.count)
            report.add("vectors", graph.count)
            report.print(json: output.json)
        } }
    }
}

struct CompactCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "compact",
        abstract: "Rebuild a saved index without its removed vectors, and save it.")

    @Argument(help: "The saved index.") var index: String
    @Option(help: "Worker threads; 0 means one per core.") var threads = 0
    @OptionGroup var output: OutputOptions

    func run() throws {
        try reportingErrors { try withExclusiveAccess(to: index) {
            let graph = try HNSWIndex(contentsOf: index, threads: threads)
            let (_, seconds) = try timed { try graph.compact() }
            try graph.save(to: index)
            var report = Report()
            report.add("vectors", graph.count)
            report.add("seconds", seconds)
            report.print(json: output.json)
        } }
    }
}
