import ArgumentParser
import Nearest

@main
struct NearestCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "nearest",
        abstract: "Nearest-neighbour search over vector files: exact (flat, BLAS) and HNSW.",
        version: Runtime.version,
        subcommands: [InfoCommand.self, VerifyCommand.self, FlatCommand.self, BuildCommand.self, SearchCommand.self,
                      AddCommand.self, RemoveCommand.self, CompactCommand.self, CollectionCommand.self]
    )
}
