import Foundation

/// What a collection holds in memory about its points, by internal id, built from the store when
/// it opens: the payload index, the text index (if the collection has one), each point's id,
/// and (with `payloadsInMemory`) its payload.
struct PointTables: Sendable {
    var payloads = PayloadIndex()
    var text: TextIndex?
    /// By internal id from `first` on.
    var keys: [PointID?] = []
    var held: [Payload?] = []
    private var first: Int64 = 0

    /// Reads every point of `store`: the id range cut into `parts` read side by side (parsing
    /// and indexing payloads is most of the work of opening a collection).
    static func read(from store: Store, holdingPayloads: Bool, text: TextSearch?, parts: Int) throws(CollectionError) -> PointTables {
        let end = try store.largestID() + 1
        let step = max(4096, (end + Int64(parts) - 1) / Int64(parts))
        let ranges = stride(from: Int64(0), to: end, by: Int(step)).map { $0 ..< min($0 + step, end) }
        let later = ranges.dropFirst().map { ids in
            inBackground { () throws(CollectionError) in try read(from: store, ids: ids, holdingPayloads: holdingPayloads, text: text) }
        }
        var tables = try read(from: store, ids: ranges.first ?? 0 ..< 1, holdingPayloads: holdingPayloads, text: text)
        for part in later { tables.append(try part()) }
        tables.payloads.tidy()
        tables.text?.tidy()
        return tables
    }

    /// Reads the points with internal ids in `ids` (the payload index untidied).
    private static func read(from store: Store, ids: Range<Int64>, holdingPayloads: Bool, text: TextSearch?) throws(CollectionError) -> PointTables {
        var tables = PointTables(first: ids.lowerBound)
        tables.text = text.map(TextIndex.init(settings:))
        try store.payloads(ids: ids) { (id, key, text, count) throws(CollectionError) in
            let payload = try Store.payload(text, count: count, id: id, path: store.path)
            tables.payloads.upsert(UInt32(id), payload)
            tables.text?.upsert(UInt32(id), payload)
            let slot = Int(id - ids.lowerBound)
            set(key, at: slot, in: &tables.keys)
            if holdingPayloads { set(payload, at: slot, in: &tables.held) }
        }
        return tables
    }

    private init(first: Int64) { self.first = first }

    /// Sets a table's entry at `slot`, growing it if need be.
    static func set<T>(_ value: T?, at slot: Int, in table: inout [T?]) {
        if table.count <= slot { table.append(contentsOf: repeatElement(nil, count: slot + 1 - table.count)) }
        table[slot] = value
    }

    /// Takes in `later`, read from ids above all of these.
    private mutating func append(_ later: PointTables) {
        payloads.append(later.payloads)
        if let laterText = later.text { text?.append(laterText) }
        let gap = Int(later.first - first)
        keys += repeatElement(nil, count: gap - keys.count)
        keys += later.keys
        if !later.held.isEmpty {
            held += repeatElement(nil, count: gap - held.count)
            held += later.held
        }
    }
}

/// A result that one thread writes before signalling `done` and another reads after waiting.
private final class Outcome<T>: @unchecked Sendable {
    var result: Result<T, CollectionError>?
    let done = DispatchSemaphore(value: 0)
}

/// Runs `work` on a thread of its own; the function returned waits for its result.
func inBackground<T: Sendable>(_ work: @escaping @Sendable () throws(CollectionError) -> T) -> () throws(CollectionError) -> T {
    let outcome = Outcome<T>()
    Thread.detachNewThread {
        outcome.result = Result { () throws(CollectionError) in try work() }
        outcome.done.signal()
    }
    return { () throws(CollectionError) in
        outcome.done.wait()
        return try outcome.result!.get()
    }
}
