import Nearest

/// Points upserted since the graph last took them in: searched exactly (a flat index) until
/// there are enough to add to the graph in one parallel insert.
struct PendingPoints {
    private(set) var flat: FlatIndex
    /// The point id of each flat row; nil once the point was upserted again or deleted.
    private var rowIDs: [UInt64?] = []
    private var rows: [UInt64: Int] = [:]
    let dimensions: Int
    let metric: Metric

    init(dimensions: Int, metric: Metric) throws(NearestError) {
        self.dimensions = dimensions
        self.metric = metric
        flat = try FlatIndex(dimensions: dimensions, metric: metric, threads: 1)
    }

    var count: Int { rows.count }
    var ids: Dictionary<UInt64, Int>.Keys { rows.keys }
    func contains(_ id: UInt64) -> Bool { rows[id] != nil }

    /// Adds or replaces the vectors of `ids` (distinct, validated by the caller).
    mutating func upsert(_ vectors: [[Float]], ids: [UInt64]) throws(NearestError) {
        let added = try flat.add(Matrix<Float>(rows: vectors.count, columns: dimensions) { out in
            for (i, vector) in vectors.enumerated() {
                _ = UnsafeMutableBufferPointer(rebasing: out[i * dimensions ..< (i + 1) * dimensions]).initialize(from: vector)
            }
        })
        for (id, row) in zip(ids, added) {
            if let old = rows[id] { rowIDs[old] = nil }
            rowIDs.append(id)
            rows[id] = row
        }
    }

    mutating func remove(_ id: UInt64) {
        if let row = rows.removeValue(forKey: id) { rowIDs[row] = nil }
    }

    /// These points without `ids`, in a flat index of their own (so that the rows of points
    /// taken out no longer cost the searches anything).
    func without(_ ids: Set<UInt64>) throws(NearestError) -> PendingPoints {
        var kept = try PendingPoints(dimensions: dimensions, metric: metric)
        let live = rowIDs.enumerated().compactMap { row, id in id.flatMap { ids.contains($0) ? nil : (row, $0) } }
        guard !live.isEmpty else { return kept }
        try kept.upsert(live.map { flat.vector(at: $0.0)! }, ids: live.map(\.1))
        return kept
    }

    /// The live points as one matrix with their ids (in flat rows, unit length under cosine).
    func drain() -> (Matrix<Float>, [UInt64]) {
        let live = rowIDs.enumerated().compactMap { row, id in id.map { (row, $0) } }
        let matrix = Matrix<Float>(rows: live.count, columns: dimensions) { out in
            for (i, (row, _)) in live.enumerated() {
                _ = UnsafeMutableBufferPointer(rebasing: out[i * dimensions ..< (i + 1) * dimensions])
                    .initialize(from: flat.vector(at: row)!)
            }
        }
        return (matrix, live.map(\.1))
    }

    /// The `k` nearest live points, optionally only those in `allowed`.
    func search(_ query: [Float], k: Int, allowed: ((UInt64) -> Bool)? = nil) throws(NearestError) -> [Neighbor] {
        guard !rows.isEmpty else { return [] }
        // Dead rows and rows outside `allowed` take places in the flat result: ask for enough.
        let wanted = allowed == nil ? min(flat.count, k + (rowIDs.count - rows.count)) : flat.count
        var hits: [Neighbor] = []
        for hit in try flat.search(query, k: wanted) {
            guard let id = rowIDs[Int(hit.id)], allowed?(id) ?? true else { continue }
            hits.append(Neighbor(id: id, distance: hit.distance))
            if hits.count == k { break }
        }
        return hits
    }
}
