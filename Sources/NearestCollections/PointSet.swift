/// A set of points by their internal ids (the store's row numbers, dense from 1 up): a sorted
/// array while sparse, a bitset once dense. The switch happens where the two cost the same
/// memory (one id in 32 of the id space), with a margin so that a set on the edge does not
/// switch back and forth.
struct PointSet {
    private enum Storage {
        case sorted([UInt32])
        case bits([UInt64])
    }

    private var storage: Storage = .sorted([])
    private(set) var count = 0

    var isEmpty: Bool { count == 0 }

    /// Adds `id`; the ids under `limit` are the space the set lives in (for choosing a form).
    mutating func insert(_ id: UInt32, limit: Int) {
        switch storage {
        case .sorted(var ids):
            if let last = ids.last, last >= id {  // not the common append at the end
                let at = ids.lowerBound(of: id)
                if at < ids.count && ids[at] == id { return }
                storage = .sorted([])  // keeps `ids` uniquely referenced while it changes
                ids.insert(id, at: at)
            } else {
                storage = .sorted([])
                ids.append(id)
            }
            count += 1
            if count > 64 && count > limit / 32 { storage = .bits(Self.bitset(ids, limit: limit)) } else { storage = .sorted(ids) }
        case .bits(var words):
            storage = .sorted([])
            let word = Int(id >> 6)
            if word >= words.count { words.append(contentsOf: repeatElement(0, count: max(word + 1, limit / 64 + 1) - words.count)) }
            let bit: UInt64 = 1 << UInt64(id & 63)
            if words[word] & bit == 0 {
                words[word] |= bit
                count += 1
            }
            storage = .bits(words)
        }
    }

    /// Removes `id` if present.
    mutating func remove(_ id: UInt32, limit: Int) {
        switch storage {
        case .sorted(var ids):
            let at = ids.lowerBound(of: id)
            guard at < ids.count, ids[at] == id else { return }
            storage = .sorted([])
            ids.remove(at: at)
            count -= 1
            storage = .sorted(ids)
        case .bits(var words):
            let word = Int(id >> 6)
            let bit: UInt64 = 1 << UInt64(id & 63)
            guard word < words.count, words[word] & bit != 0 else { return }
            storage = .sorted([])
            words[word] &= ~bit
            count -= 1
            if count < limit / 64 { storage = .sorted(Self.ids(in: words)) } else { storage = .bits(words) }
        }
    }

    func contains(_ id: UInt32) -> Bool {
        switch storage {
        case .sorted(let ids):
            let at = ids.lowerBound(of: id)
            return at < ids.count && ids[at] == id
        case .bits(let words):
            let word = Int(id >> 6)
            return word < words.count && words[word] >> UInt64(id & 63) & 1 == 1
        }
    }

    /// ORs the set into `words` (which cover at least every id in it).
    func union(into words: UnsafeMutableBufferPointer<UInt64>) {
        switch storage {
        case .sorted(let ids):
            for id in ids where Int(id >> 6) < words.count { words[Int(id >> 6)] |= 1 << UInt64(id & 63) }
        case .bits(let mine):
            for i in 0 ..< min(mine.count, words.count) { words[i] |= mine[i] }
        }
    }

    /// ANDs the set into `words`: afterwards they hold only ids that are also in the set.
    func intersect(into words: UnsafeMutableBufferPointer<UInt64>) {
        switch storage {
        case .sorted(let ids):
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
        case .bits(let mine):
            let shared = min(mine.count, words.count)
            for i in 0 ..< shared { words[i] &= mine[i] }
            for i in shared ..< words.count { words[i] = 0 }
        }
    }

    /// The ids in increasing order.
    var ids: [UInt32] {
        switch storage {
        case .sorted(let ids): ids
        case .bits(let words): Self.ids(in: words)
        }
    }

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
