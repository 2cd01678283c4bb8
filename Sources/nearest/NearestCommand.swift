import ArgumentParser
import Nearest

@main
struct NearestCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "nearest",
        abstract: "Nearest-neighbour search over vector files (exact and HNSW), collections with filtered search, and a Qdrant-compatible server.",
        version: Runtime.version,
        subcommands: [InfoCommand.self, VerifyCommand.self, FlatCommand.self, BuildCommand.self, SearchCommand.self,
                      AddCommand.self, RemoveCommand.self, CompactCommand.self, CollectionCommand.self,
                      ServeCommand.self]
    )
}
