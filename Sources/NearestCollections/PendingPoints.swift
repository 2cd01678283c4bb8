import Nearest

/// Points upserted since the graph last took them in: searched exactly until there are enough
/// to add to the graph in one parallel insert.
///
/// The rows live in flat indexes of `segmentRows` each, filled in turn: adding rows never moves
/// the ones already held (a single flat index doubles, copying tens of megabytes while searches
/// wait for the write to finish). Rows are numbered across segments.
struct PendingPoints {
    static let segmentRows = 2048

    private var segments: [FlatIndex] = []
    /// The point id of each row; nil once the point was upserted again or deleted.
    private var rowIDs: [UInt64?] = []
    private var rows: [UInt64: Int] = [:]
    let dimensions: Int
    let metric: Metric

    init(dimensions: Int, metric: Metric) throws(NearestError) {
        self.dimensions = dimensions
        self.metric = metric
    }

    var count: Int { rows.count }
    var ids: Dictionary<UInt64, Int>.Keys { rows.keys }
    func contains(_ id: UInt64) -> Bool { rows[id] != nil }

    /// New segments that adding `rows` rows will need.
    func segmentsNeeded(adding rows: Int) -> Int {
        max(0, (rowIDs.count + rows + Self.segmentRows - 1) / Self.segmentRows - segments.count)
    }

    /// A segment, its memory allocated and touched: made before a write takes the lock that
    /// searches wait on, and handed to `upsert`.
    static func makeSegment(dimensions: Int, metric: Metric) throws(NearestError) -> FlatIndex {
        let segment = try FlatIndex(dimensions: dimensions, metric: metric, threads: 1)
        try segment.reserveCapacity(segmentRows)
        return segment
    }

    /// Adds or replaces the vectors of `ids` (distinct, validated by the caller), filling new
    /// segments from `spares` first.
    mutating func upsert(_ vectors: [[Float]], ids: [UInt64], spares: inout [FlatIndex]) throws(NearestError) {
        var next = 0
        while next < vectors.count {
            if rowIDs.count == segments.count * Self.segmentRows {
                if let spare = spares.popLast() { segments.append(spare) }
                else { segments.append(try Self.makeSegment(dimensions: dimensions, metric: metric)) }
            }
            let room = segments.count * Self.segmentRows - rowIDs.count
            let part = next ..< min(next + room, vectors.count)
            _ = try segments[segments.count - 1].add(Matrix<Float>(rows: part.count, columns: dimensions) { out in
                for (i, vector) in vectors[part].enumerated() {
                    _ = UnsafeMutableBufferPointer(rebasing: out[i * dimensions ..< (i + 1) * dimensions]).initialize(from: vector)
                }
            })
            for id in ids[part] {
                if let old = rows[id] { rowIDs[old] = nil }
                rows[id] = rowIDs.count
                rowIDs.append(id)
            }
            next = part.upperBound
        }
    }

    mutating func remove(_ id: UInt64) {
        if let row = rows.removeValue(forKey: id) { rowIDs[row] = nil }
    }

    /// The stored vector of row `row` (unit length under cosine).
    private func vector(atRow row: Int) -> [Float] {
        segments[row / Self.segmentRows].vector(at: row % Self.segmentRows)!
    }

    /// These points without `ids`, in segments of their own (so that the rows of points taken
    /// out no longer cost the searches anything).
    func without(_ ids: Set<UInt64>) throws(NearestError) -> PendingPoints {
        var kept = try PendingPoints(dimensions: dimensions, metric: metric)
        let live = rowIDs.enumerated().compactMap { row, id in id.flatMap { ids.contains($0) ? nil : (row, $0) } }
        guard !live.isEmpty else { return kept }
        var none: [FlatIndex] = []
        try kept.upsert(live.map { vector(atRow: $0.0) }, ids: live.map(\.1), spares: &none)
        return kept
    }

    /// The live points as one matrix with their ids (unit length under cosine).
    func drain() -> (Matrix<Float>, [UInt64]) {
        let live = rowIDs.enumerated().compactMap { row, id in id.map { (row, $0) } }
        let matrix = Matrix<Float>(rows: live.count, columns: dimensions) { out in
            for (i, (row, _)) in live.enumerated() {
                _ = UnsafeMutableBufferPointer(rebasing: out[i * dimensions ..< (i + 1) * dimensions])
                    .initialize(from: vector(atRow: row))
            }
        }
        return (matrix, live.map(\.1))
    }

    /// The `k` nearest live points, optionally only those in `allowed`.
    func search(_ query: [Float], k: Int, allowed: ((UInt64) -> Bool)? = nil) throws(NearestError) -> [Neighbor] {
        guard !rows.isEmpty else { return [] }
        var hits: [Neighbor] = []
        for (s, segment) in segments.enumerated() {
            let first = s * Self.segmentRows
            let held = min(Self.segmentRows, rowIDs.count - first)
            // Dead rows and rows outside `allowed` take places in the flat result: ask for enough.
            let dead = allowed == nil ? rowIDs[first ..< first + held].lazy.filter { $0 == nil }.count : held
            var found = 0
            for hit in try segment.search(query, k: min(held, k + dead)) {
                guard let id = rowIDs[first + Int(hit.id)], allowed?(id) ?? true else { continue }
                hits.append(Neighbor(id: id, distance: hit.distance))
                found += 1
                if found == k { break }
            }
        }
        guard segments.count > 1 else { return hits }
        return Array(hits.sorted { ($0.distance, $0.id) < ($1.distance, $1.id) }.prefix(k))
    }
}
