import CNearest

/// A read-only view of the graph's structure, for invariant tests and diagnostics.
@_spi(Inspection)
public struct HNSWGraphSnapshot: Sendable {
    /// The entry point's node and the top layer, nil when empty.
    public let entry: (node: Int, level: Int)?
    /// Each node's top layer.
    public let levels: [Int]
    /// `links[level][node]`: the node's neighbours on that layer (empty above its level).
    public let links: [[[UInt32]]]
    /// Each node's external id.
    public let ids: [UInt64]
    public let m: Int
    public let m0: Int
}

extension HNSWIndex {
    /// Copies the graph's structure. Take it while no add runs.
    @_spi(Inspection)
    public func graphSnapshot() -> HNSWGraphSnapshot {
        var node: UInt32 = 0, level: UInt32 = 0
        let hasEntry = nn_hnsw_entry(handleForInspection, &node, &level)
        let count = nn_hnsw_count(handleForInspection)
        let levels = (0 ..< count).map { Int(nn_hnsw_node_level(handleForInspection, UInt32($0))) }
        let top = levels.max() ?? 0
        var buffer = [UInt32](repeating: 0, count: nn_hnsw_m0(handleForInspection))
        let links: [[[UInt32]]] = (0 ... top).map { layer in
            (0 ..< count).map { n in
                let got = nn_hnsw_node_links(handleForInspection, UInt32(n), UInt32(layer), &buffer)
                return Array(buffer[0 ..< got])
            }
        }
        return HNSWGraphSnapshot(
            entry: hasEntry ? (Int(node), Int(level)) : nil, levels: levels, links: links,
            ids: (0 ..< count).map { nn_hnsw_node_id(handleForInspection, UInt32($0)) },
            m: nn_hnsw_m(handleForInspection), m0: nn_hnsw_m0(handleForInspection))
    }
}
