import ArgumentParser
import Foundation
import NearestServer

/// `nearest serve`: Qdrant's REST API over the collections under a root directory.
struct ServeCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "serve",
        abstract: "Serve the collections under --root over Qdrant's REST API (qdrant-client and the other Qdrant clients work unchanged).",
        discussion: """
            Stops on SIGTERM or SIGINT: no new connections, the requests in flight finish, and the \
            collections are checkpointed and closed. Every acknowledged write is already on disk.
            """
    )

    @Option(help: "The address to listen on (loopback by default: set an API key before listening wider).")
    var host = "127.0.0.1"
    @Option(help: "The port (Qdrant's REST port by default; 0 picks a free one).") var port = 6333
    @OptionGroup var root: RootOptions
    @Option(help: "Require this key of every request, in the api-key header or as a bearer token (default: $NEAREST_API_KEY).")
    var apiKey: String?
    private var key: String? { apiKey ?? ProcessInfo.processInfo.environment["NEAREST_API_KEY"] }
    @Option(help: "Refuse request bodies larger than this many MiB (413).") var maxBodyMib = 32

    func run() async throws {
        guard (1 ... 4096).contains(maxBodyMib) else { throw ValidationError("--max-body-mib must be in 1...4096") }
        guard (0 ... 65_535).contains(port) else { throw ValidationError("--port must be in 0...65535") }
        if let key, key.isEmpty { throw ValidationError("the API key is empty") }
        try FileManager.default.createDirectory(atPath: root.root, withIntermediateDirectories: true)
        let server = QdrantServer(host: host, port: port, root: root.root, apiKey: key, maximumBodyBytes: maxBodyMib << 20)
        try await server.run { port in
            // One line a script can wait for (the port is the real one when --port 0).
            FileHandle.standardOutput.write(Data("nearest serve: listening on http://\(host):\(port) (collections in \(root.root))\n".utf8))
        }
    }
}
