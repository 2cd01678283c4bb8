/// Which node holds each id. Ids counted up from 0 or 1 (a store's row numbers, most callers'
/// ids) sit in an array, read with one load; other ids (hashes, random 64-bit keys) in a
/// dictionary. The array grows only while it stays within twice the number of ids held (plus a
/// little), so sparse ids never make it large.
struct NodeTable {
    private var dense: [UInt32] = []  // node + 1; 0 for none
    private var sparse: [UInt64: UInt32] = [:]
    private(set) var count = 0

    subscript(id: UInt64) -> UInt32? {
        get {
            if id < UInt64(dense.count) {
                let slot = dense[Int(id)]
                return slot == 0 ? nil : slot - 1
            }
            return sparse[id]
        }
        set { _ = update(id, newValue) }
    }

    /// Sets (or, with nil, clears) the node of `id`; returns the node it had.
    @discardableResult
    mutating func update(_ id: UInt64, _ node: UInt32?) -> UInt32? {
        if id >= UInt64(dense.count), node != nil, id < UInt64(2 * count + 1024) { grow(to: Int(id) + 1) }
        let old: UInt32?
        if id < UInt64(dense.count) {
            let slot = dense[Int(id)]
            old = slot == 0 ? nil : slot - 1
            dense[Int(id)] = node.map { $0 + 1 } ?? 0
        } else if let node {
            old = sparse.updateValue(node, forKey: id)
        } else {
            old = sparse.removeValue(forKey: id)
        }
        count += (node == nil ? 0 : 1) - (old == nil ? 0 : 1)
        return old
    }

    /// Widens the array (at least doubling it) and moves the ids it now covers out of the dictionary.
    private mutating func grow(to size: Int) {
        let old = dense.count
        dense.append(contentsOf: repeatElement(0, count: max(size, 2 * old) - old))
        guard !sparse.isEmpty else { return }
        for (id, node) in sparse where id < UInt64(dense.count) {
            dense[Int(id)] = node + 1
            sparse[id] = nil
        }
    }

    mutating func reserveCapacity(_ count: Int) { dense.reserveCapacity(count) }

    /// Every id held, in no particular order.
    var ids: [UInt64] {
        var ids: [UInt64] = []
        ids.reserveCapacity(count)
        for (id, slot) in dense.enumerated() where slot != 0 { ids.append(UInt64(id)) }
        ids.append(contentsOf: sparse.keys)
        return ids
    }
}
