/// A set of points by their internal ids (the store's row numbers, dense from 1 up): a sorted
/// array while sparse, a bitset once dense. The switch happens where the two cost the same
/// memory (one id in 32 of the id space), with a margin so that a set on the edge does not
/// switch back and forth.
struct PointSet {
    // One of the two forms is in use (the other stays empty): mutated in place, never copied.
    private var sorted: [UInt32] = []
    private var bits: [UInt64] = []
    private var dense = false
    private(set) var count = 0

    var isEmpty: Bool { count == 0 }

    /// Adds `id`; the ids under `limit` are the space the set lives in (for choosing a form).
    mutating func insert(_ id: UInt32, limit: Int) {
        if dense {
            let word = Int(id >> 6)
            if word >= bits.count { bits.append(contentsOf: repeatElement(0, count: max(word + 1, limit / 64 + 1) - bits.count)) }
            let bit: UInt64 = 1 << UInt64(id & 63)
            if bits[word] & bit == 0 {
                bits[word] |= bit
                count += 1
            }
            return
        }
        if let last = sorted.last, last >= id {  // not the common append at the end
            let at = sorted.lowerBound(of: id)
            if at < sorted.count && sorted[at] == id { return }
            sorted.insert(id, at: at)
        } else {
            sorted.append(id)
        }
        count += 1
        becomeDenseIfDue(limit: limit)
    }

    /// Switches to a bitset once the sorted ids would take more memory.
    private mutating func becomeDenseIfDue(limit: Int) {
        guard !dense, count > 64, count > limit / 32 else { return }
        bits = Self.bitset(sorted, limit: limit)
        sorted = []
        dense = true
    }

    /// Removes `id` if present.
    mutating func remove(_ id: UInt32, limit: Int) {
        if dense {
            let word = Int(id >> 6)
            let bit: UInt64 = 1 << UInt64(id & 63)
            guard word < bits.count, bits[word] & bit != 0 else { return }
            bits[word] &= ~bit
            count -= 1
            if count < limit / 64 {
                sorted = Self.ids(in: bits)
                bits = []
                dense = false
            }
            return
        }
        let at = sorted.lowerBound(of: id)
        guard at < sorted.count, sorted[at] == id else { return }
        sorted.remove(at: at)
        count -= 1
    }

    /// Adds every id of `other`.
    mutating func formUnion(_ other: PointSet, limit: Int) {
        if !dense, !other.dense, (sorted.last ?? 0) < (other.sorted.first ?? .max) {
            sorted.append(contentsOf: other.sorted)  // the ids follow these: a plain append
            count += other.count
            becomeDenseIfDue(limit: limit)
            return
        }
        for id in other.ids { insert(id, limit: limit) }
    }

    func contains(_ id: UInt32) -> Bool {
        if dense {
            let word = Int(id >> 6)
            return word < bits.count && bits[word] >> UInt64(id & 63) & 1 == 1
        }
        let at = sorted.lowerBound(of: id)
        return at < sorted.count && sorted[at] == id
    }

    /// ORs the set into `words` (which cover at least every id in it).
    func union(into words: UnsafeMutableBufferPointer<UInt64>) {
        if dense {
            for i in 0 ..< min(bits.count, words.count) { words[i] |= bits[i] }
        } else {
            for id in sorted where Int(id >> 6) < words.count { words[Int(id >> 6)] |= 1 << UInt64(id & 63) }
        }
    }

    /// ANDs the set into `words`: afterwards they hold only ids that are also in the set.
    func intersect(into words: UnsafeMutableBufferPointer<UInt64>) {
        if !dense {
            let ids = sorted
            // Each word that holds ids keeps just their bits; every other word is cleared.
            var i = 0, cleared = 0
            while i < ids.count, Int(ids[i] >> 6) < words.count {
                let word = Int(ids[i] >> 6)
                var mask: UInt64 = 0
                while i < ids.count, Int(ids[i] >> 6) == word {
                    mask |= 1 << UInt64(ids[i] & 63)
                    i += 1
                }
                for j in cleared ..< word { words[j] = 0 }
                words[word] &= mask
                cleared = word + 1
            }
            for j in cleared ..< words.count { words[j] = 0 }
        } else {
            let shared = min(bits.count, words.count)
            for i in 0 ..< shared { words[i] &= bits[i] }
            for i in shared ..< words.count { words[i] = 0 }
        }
    }

    /// The ids in increasing order.
    var ids: [UInt32] { dense ? Self.ids(in: bits) : sorted }

    private static func bitset(_ ids: [UInt32], limit: Int) -> [UInt64] {
        var words = [UInt64](repeating: 0, count: max(limit / 64 + 1, Int((ids.last ?? 0) >> 6) + 1))
        for id in ids { words[Int(id >> 6)] |= 1 << UInt64(id & 63) }
        return words
    }

    static func ids(in words: some Swift.Collection<UInt64>) -> [UInt32] {
        var ids: [UInt32] = []
        var base: UInt32 = 0
        for var word in words {
            while word != 0 {
                ids.append(base + UInt32(word.trailingZeroBitCount))
                word &= word - 1
            }
            base &+= 64
        }
        return ids
    }
}

extension Array where Element: Comparable {
    /// The index of the first element not less than `x` (the count if none), in a sorted array.
    func lowerBound(of x: Element) -> Int {
        var low = 0, high = count
        while low < high {
            let mid = (low + high) / 2
            if self[mid] < x { low = mid + 1 } else { high = mid }
        }
        return low
    }
}
