/// How an HNSW graph is built. The names follow Malkov & Yashunin's paper.
public struct HNSWConfiguration: Sendable, Equatable, Codable {
    /// M: links per node on the upper layers; layer 0 keeps Mmax0 = 2·M. At least 2.
    public var m: Int = 16
    /// efConstruction: the beam width while inserting. Larger builds slower and finds better links.
    public var efConstruction: Int = 200
    /// Seeds the level draws. A one-thread build with the same seed and input is bit-for-bit
    /// the same graph.
    public var seed: UInt64 = 100
    /// keepPrunedConnections of the paper's Algorithm 4: fill a node's links back up to M with
    /// candidates the heuristic discarded.
    public var keepPrunedConnections = false
    /// Worker threads for bulk adds and batch searches; 0 means one per core.
    public var threads: Int = 0
    /// The distance kernels; `.automatic` picks the best for this CPU.
    public var instructionSet: InstructionSet = .automatic

    public init(m: Int = 16, efConstruction: Int = 200, seed: UInt64 = 100,
                keepPrunedConnections: Bool = false, threads: Int = 0,
                instructionSet: InstructionSet = .automatic) {
        self.m = m
        self.efConstruction = efConstruction
        self.seed = seed
        self.keepPrunedConnections = keepPrunedConnections
        self.threads = threads
        self.instructionSet = instructionSet
    }

    /// Throws a readable reason when a parameter is out of range.
    public func validate() throws(NearestError) {
        guard m >= 2 && m <= 1024 else { throw .invalidParameter("M must be in 2...1024, got \(m)") }
        guard efConstruction >= 1 && efConstruction <= HNSWIndex.maximumEF else {
            throw .invalidParameter("efConstruction must be in 1...\(HNSWIndex.maximumEF), got \(efConstruction)")
        }
        guard threads >= 0 else { throw .invalidParameter("threads must be 0 (all cores) or more, got \(threads)") }
        guard instructionSet.isSupported else { throw .unsupportedInstructionSet(instructionSet) }
    }
}
