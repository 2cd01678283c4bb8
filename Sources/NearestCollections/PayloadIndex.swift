/// The payload index: for every field path and scalar value, the set of points holding it, in
/// memory. A filter is answered by combining these sets into a bitset over internal ids; its
/// population is the exact number of matches, which the planner uses to choose between scoring
/// the matches exactly and walking the graph.
///
/// Built from the store's payloads when a collection opens and kept in step by every write.
/// Semantics follow `Filter.matches`, the reference the tests compare with: a path is a key, or
/// keys split at dots into nested objects; arrays (at any depth) contribute every element, and
/// containers count for `$exists`; `true` never equals `1`.
struct PayloadIndex {
    /// A scalar as a posting key: JSON types stay apart.
    enum Key: Hashable {
        case null, bool(Bool), number(Double), string(String)

        init?(_ value: JSONValue) {
            switch value {
            case .null: self = .null
            case .bool(let b): self = .bool(b)
            case .number(let x): self = .number(x)
            case .string(let s): self = .string(s)
            case .array, .object: return nil
            }
        }
    }

    /// One path's postings: each distinct value gets a number, and its set sits at that number.
    struct Field {
        private var valueNumbers: [Key: Int32] = [:]
        private(set) var sets: [PointSet] = []
        private var keys: [Key?] = []  // by number; nil while free
        private var freeNumbers: [Int32] = []
        /// Points with anything at the path (containers and null too).
        var present = PointSet()
        /// Points with something at the path other than null or [] (`Filter.isEmpty`'s complement).
        var filled = PointSet()
        /// The distinct numbers held, sorted; may hold numbers no point holds any more (their
        /// postings are gone), until `tidy` rebuilds it.
        var numbers: [Double] = []
        var unsortedNumbers: [Double] = []
        var staleNumbers = 0
        /// Listed in `dirtyFields`, for `tidy`.
        var needsTidy = false

        /// The points holding `key`, if any.
        func points(_ key: Key) -> PointSet? { valueNumbers[key].map { sets[Int($0)] } }

        /// Adds `id` under `key` and returns the value's number; with `unlessPresent`, nil if
        /// `id` is there already (only possible inside an array).
        mutating func insert(_ id: UInt32, _ key: Key, limit: Int, unlessPresent: Bool) -> Int32? {
            let number = number(for: key)
            if unlessPresent, sets[Int(number)].contains(id) { return nil }
            sets[Int(number)].insert(id, limit: limit)
            return number
        }

        /// The number of `key`'s set, given one (empty) if it has none.
        private mutating func number(for key: Key) -> Int32 {
            if let number = valueNumbers[key] { return number }
            let number: Int32
            if let reused = freeNumbers.popLast() { number = reused } else {
                number = Int32(sets.count)
                sets.append(PointSet())
                keys.append(nil)
            }
            valueNumbers[key] = number
            keys[Int(number)] = key
            if case let .number(x) = key { unsortedNumbers.append(x) }
            return number
        }

        /// Takes `id` out of value `number`; true if that emptied a number's set.
        mutating func remove(_ id: UInt32, number: Int32, limit: Int) -> Bool {
            let n = Int(number)
            sets[n].remove(id, limit: limit)
            guard sets[n].isEmpty else { return false }
            // The set is empty: its value is forgotten and its number is free for another.
            guard let key = keys[n] else { return false }
            valueNumbers[key] = nil
            keys[n] = nil
            freeNumbers.append(number)
            if case .number = key {
                staleNumbers += 1
                return true
            }
            return false
        }

        /// Takes in the sets of `later`, whose points all have ids above this field's; returns
        /// the number here of each of its value numbers (-1 for a free one).
        mutating func absorb(_ later: Field, limit: Int) -> [Int32] {
            present.formUnion(later.present, limit: limit)
            filled.formUnion(later.filled, limit: limit)
            var renumbered = [Int32](repeating: -1, count: later.sets.count)
            for (n, key) in later.keys.enumerated() {
                guard let key else { continue }
                let number = number(for: key)
                sets[Int(number)].formUnion(later.sets[n], limit: limit)
                renumbered[n] = number
            }
            return renumbered
        }

        /// Every value held, with its points.
        var entries: some Sequence<(key: Key, points: PointSet)> {
            zip(keys, sets).lazy.compactMap { key, set in key.map { ($0, set) } }
        }

        var numberKeys: [Double] { valueNumbers.keys.compactMap { if case let .number(x) = $0 { x } else { nil } } }
    }

    /// Where a point appears, so that it can be taken out without its old payload: the field's
    /// number in the high half, and in the low half its value's number + 1 (0: `present`;
    /// `filledPosting`: `filled`).
    private typealias Posting = UInt64
    private static let filledPosting: Posting = 0xFFFF_FFFF

    private var fields: [Field] = []
    /// A field's number from its parent's (-1 for the payload itself) and its key.
    private var fieldNumbers: [FieldName: Int32] = [:]
    private struct FieldName: Hashable {
        var parent: Int32
        var key: String
    }
    /// Each field's first children (by the parent's number + 1; the payload's own keys first).
    private var firstChildren: [[(key: String, number: Int32)]] = [[]]
    private var postings: [[Posting]] = []  // by internal id
    private var dirtyFields: [Int] = []
    /// Every point in the collection.
    private(set) var live = PointSet()
    /// One above the largest internal id seen: the bitsets' extent.
    private(set) var idLimit = 1

    var count: Int { live.count }

    // MARK: Changes

    /// Adds `id` with `payload`, replacing what it held before. Call `tidy()` after a batch.
    mutating func upsert(_ id: UInt32, _ payload: Payload) {
        remove(id)
        idLimit = max(idLimit, Int(id) + 1)
        live.insert(id, limit: idLimit)
        var mine: [Posting] = []
        mine.reserveCapacity(payload.count)
        for (key, value) in payload { add(value, at: fieldNumber(parent: -1, key), id: id, inArray: false, element: false, to: &mine) }
        if postings.count <= Int(id) { postings.append(contentsOf: repeatElement([], count: Int(id) + 1 - postings.count)) }
        postings[Int(id)] = mine
    }

    /// Takes in `later`, built apart from the points with ids above every id here (the two
    /// halves of a store read side by side).
    mutating func append(_ later: PayloadIndex) {
        idLimit = max(idLimit, later.idLimit)
        live.formUnion(later.live, limit: idLimit)
        // Its fields by number (a parent is numbered before its children), then their values.
        var names = [FieldName?](repeating: nil, count: later.fields.count)
        for (name, number) in later.fieldNumbers { names[Int(number)] = name }
        var fieldMap = [Int32](repeating: -1, count: later.fields.count)
        var valueMaps: [[Int32]] = []
        valueMaps.reserveCapacity(later.fields.count)
        for (number, name) in names.enumerated() {
            let name = name!
            let f = fieldNumber(parent: name.parent < 0 ? -1 : fieldMap[Int(name.parent)], name.key)
            fieldMap[number] = f
            valueMaps.append(fields[Int(f)].absorb(later.fields[number], limit: idLimit))
            if !fields[Int(f)].unsortedNumbers.isEmpty { needsTidy(Int(f)) }
        }
        if postings.count < later.postings.count {
            postings.append(contentsOf: repeatElement([], count: later.postings.count - postings.count))
        }
        for id in later.live.ids {
            postings[Int(id)] = later.postings[Int(id)].map { posting in
                let f = Int(posting >> 32), value = posting & 0xFFFF_FFFF
                let here = Posting(fieldMap[f]) << 32
                if value == 0 || value == Self.filledPosting { return here | value }
                return here | Posting(valueMaps[f][Int(value - 1)] + 1)
            }
        }
    }

    /// Posts `value` (and what it holds) under `field`; an `element` of an array at that same
    /// field. Only inside an array can a point reach a field or a value twice; elsewhere the
    /// checks for that are skipped.
    private mutating func add(_ value: JSONValue, at field: Int32, id: UInt32, inArray: Bool, element: Bool,
                              to mine: inout [Posting]) {
        let f = Int(field)
        if !inArray || !fields[f].present.contains(id) {
            fields[f].present.insert(id, limit: idLimit)
            mine.append(Posting(field) << 32)
        }
        if !element, value != .null, value != .array([]), !inArray || !fields[f].filled.contains(id) {
            fields[f].filled.insert(id, limit: idLimit)
            mine.append(Posting(field) << 32 | Self.filledPosting)
        }
        switch value {
        case .object(let members):
            for (key, child) in members {
                add(child, at: fieldNumber(parent: field, key), id: id, inArray: inArray, element: false, to: &mine)
            }
        case .array(let items):
            // Elements sit at the array's own path (nested arrays too), objects in them below it.
            for item in items { add(item, at: field, id: id, inArray: true, element: true, to: &mine) }
        default:
            let key = Key(value)!
            guard let number = fields[f].insert(id, key, limit: idLimit, unlessPresent: inArray) else { return }
            mine.append(Posting(field) << 32 | Posting(number + 1))
            if case .number = key, !fields[f].unsortedNumbers.isEmpty { needsTidy(f) }
        }
    }

    private mutating func needsTidy(_ f: Int) {
        guard !fields[f].needsTidy else { return }
        fields[f].needsTidy = true
        dirtyFields.append(f)
    }

    /// A field's number, made on first sight. Most payloads have few keys, so each field's
    /// first children are compared in a list before the name is hashed.
    private mutating func fieldNumber(parent: Int32, _ key: String) -> Int32 {
        let slot = Int(parent) + 1
        for child in firstChildren[slot] where child.key == key { return child.number }
        let name = FieldName(parent: parent, key: key)
        if let number = fieldNumbers[name] { return number }
        let number = Int32(fields.count)
        fields.append(Field())
        firstChildren.append([])
        fieldNumbers[name] = number
        if firstChildren[slot].count < 16 { firstChildren[slot].append((key, number)) }
        return number
    }

    /// Takes `id` out (nothing happens if it is not in).
    mutating func remove(_ id: UInt32) {
        guard Int(id) < postings.count, live.contains(id) else { return }
        live.remove(id, limit: idLimit)
        for posting in postings[Int(id)] {
            let f = Int(posting >> 32), value = Int32(truncatingIfNeeded: posting & 0xFFFF_FFFF)
            if value == 0 {
                fields[f].present.remove(id, limit: idLimit)
            } else if posting & 0xFFFF_FFFF == Self.filledPosting {
                fields[f].filled.remove(id, limit: idLimit)
            } else if fields[f].remove(id, number: value - 1, limit: idLimit) {
                needsTidy(f)
            }
        }
        postings[Int(id)] = []
    }

    /// Sorts the numbers that the last changes added, so that ranges can be looked up.
    mutating func tidy() {
        for f in dirtyFields {
            var field = fields[f]
            fields[f] = Field()  // keeps the arrays uniquely referenced while they change
            if field.staleNumbers > field.numbers.count / 2 {
                field.numbers = field.numberKeys.sorted()
                field.staleNumbers = 0
            } else if field.unsortedNumbers.count * 16 < field.numbers.count {
                for x in field.unsortedNumbers {
                    let at = field.numbers.lowerBound(of: x)
                    if at == field.numbers.count || field.numbers[at] != x { field.numbers.insert(x, at: at) }
                }
            } else if !field.unsortedNumbers.isEmpty {
                field.numbers = Array(Set(field.numbers + field.unsortedNumbers)).sorted()
            }
            field.unsortedNumbers.removeAll()
            field.needsTidy = false
            fields[f] = field
        }
        dirtyFields.removeAll()
    }

    // MARK: Queries

    /// The words a bitset over every id needs.
    var wordCount: Int { (idLimit + 63) / 64 }

    /// What a filter needs beyond payloads: the text index for `$text` conditions (on its field;
    /// on others they match nothing), and the internal ids of point ids for `$id`.
    struct Context {
        var text: TextIndex?
        var internalIDs: (Set<PointID>) -> [UInt32] = { _ in [] }
        /// A point's payload, for the conditions the index cannot answer (`valuesCount`,
        /// `elementMatch`): they read every point's.
        var payload: (UInt32) -> Payload? = { _ in nil }
    }

    /// Sets in `words` (zeroed, `wordCount` long) the bits of the points matching `filter`.
    func evaluate(_ filter: Filter, into words: UnsafeMutableBufferPointer<UInt64>, context: Context = Context()) {
        switch filter {
        case .and(let parts):
            guard let first = parts.first else { live.union(into: words); return }
            evaluate(first, into: words, context: context)
            for part in parts.dropFirst() {
                if let set = singleSet(part) {
                    guard let set else { words.update(repeating: 0); return }
                    set.intersect(into: words)
                } else {
                    withScratch { scratch in
                        evaluate(part, into: scratch, context: context)
                        for i in words.indices { words[i] &= scratch[i] }
                    }
                }
            }
        case .or(let parts):
            for part in parts {
                if let set = singleSet(part) {
                    set?.union(into: words)
                } else {
                    withScratch { scratch in
                        evaluate(part, into: scratch, context: context)
                        for i in words.indices { words[i] |= scratch[i] }
                    }
                }
            }
        case .not(let inner):
            evaluate(inner, into: words, context: context)
            withScratch { scratch in
                live.union(into: scratch)
                for i in words.indices { words[i] = scratch[i] & ~words[i] }
            }
        case .equals(let path, let value):
            if let field = field(path), let key = Key(value) { field.points(key)?.union(into: words) }
        case .oneOf(let path, let values):
            guard let field = field(path) else { return }
            for key in Set(values.compactMap(Key.init)) { field.points(key)?.union(into: words) }
        case .exists(let path):
            field(path)?.present.union(into: words)
        case .isEmpty(let path):
            live.union(into: words)
            if let filled = field(path)?.filled {
                withScratch { scratch in
                    filled.union(into: scratch)
                    for i in words.indices { words[i] &= ~scratch[i] }
                }
            }
        case .anyExcept(let path, let values):
            guard let field = field(path) else { return }
            let excluded = Set(values.compactMap(Key.init)).union([.null])
            for (key, points) in field.entries where !excluded.contains(key) { points.union(into: words) }
        case .text(let path, let query):
            if let text = context.text, text.settings.field == path { text.setMatches(allOf: query, in: words) }
        case .valuesCount, .elementMatch:
            withScratch { all in
                live.union(into: all)
                for (w, word) in all.enumerated() where word != 0 {
                    var bits = word
                    while bits != 0 {
                        let id = UInt32(w * 64 + bits.trailingZeroBitCount)
                        if let payload = context.payload(id), filter.matches(payload) { words[w] |= 1 << UInt64(id & 63) }
                        bits &= bits - 1
                    }
                }
            }
        case .hasID(let ids):
            for id in context.internalIDs(ids) where live.contains(id) && Int(id >> 6) < words.count {
                words[Int(id >> 6)] |= 1 << UInt64(id & 63)
            }
        case .atLeast(let count, let parts):
            guard count > 0 else { live.union(into: words); return }
            guard count <= parts.count else { return }
            // How many parts each point meets, counted bit by bit.
            var met = [UInt16](repeating: 0, count: words.count * 64)
            for part in parts {
                withScratch { scratch in
                    evaluate(part, into: scratch, context: context)
                    for (w, word) in scratch.enumerated() where word != 0 {
                        var bits = word
                        while bits != 0 {
                            met[w * 64 + bits.trailingZeroBitCount] += 1
                            bits &= bits - 1
                        }
                    }
                }
            }
            for (i, n) in met.enumerated() where Int(n) >= count { words[i >> 6] |= 1 << UInt64(i & 63) }
        case .range(let path, let range):
            guard let field = field(path) else { return }
            let low = range.greaterThanOrEqual ?? range.greaterThan ?? -.infinity
            var at = field.numbers.lowerBound(of: low)
            while at < field.numbers.count {
                let x = field.numbers[at]
                if let b = range.lessThan, !(x < b) { break }
                if let b = range.lessThanOrEqual, !(x <= b) { break }
                if range.contains(x) { field.points(.number(x))?.union(into: words) }
                at += 1
            }
        }
    }

    /// A filter that is one posting set (an equality, or `$exists`): `.some(nil)` when that set
    /// is empty, nil when the filter is not of that kind.
    private func singleSet(_ filter: Filter) -> PointSet?? {
        switch filter {
        case let .equals(path, value):
            guard let field = field(path), let key = Key(value) else { return .some(nil) }
            return .some(field.points(key))
        case let .exists(path):
            return .some(field(path)?.present)
        default:
            return nil
        }
    }

    /// Runs `body` with a zeroed bitset over every id.
    private func withScratch<R, E: Error>(_ body: (UnsafeMutableBufferPointer<UInt64>) throws(E) -> R) throws(E) -> R {
        let scratch = UnsafeMutableBufferPointer<UInt64>.allocate(capacity: wordCount)
        defer { scratch.deallocate() }
        scratch.initialize(repeating: 0)
        return try body(scratch)
    }

    /// Runs `body` with the bitset of the points matching `filter` (nil: every point) and
    /// their number.
    func withMatches<R, E: Error>(_ filter: Filter?, context: Context = Context(),
                                  _ body: (UnsafeMutableBufferPointer<UInt64>, Int) throws(E) -> R) throws(E) -> R {
        try withScratch { (bits) throws(E) -> R in
            if let filter { evaluate(filter, into: bits, context: context) } else { live.union(into: bits) }
            return try body(bits, bits.reduce(0) { $0 + $1.nonzeroBitCount })
        }
    }

    private func field(_ path: String) -> Field? {
        var number: Int32 = -1
        for key in path.split(separator: ".", omittingEmptySubsequences: false) {
            guard let child = fieldNumbers[FieldName(parent: number, key: String(key))] else { return nil }
            number = child
        }
        return fields[Int(number)]
    }

    /// The internal ids matching `filter`, increasing.
    func ids(matching filter: Filter, context: Context = Context()) -> [UInt32] {
        withMatches(filter, context: context) { bits, _ in PointSet.ids(in: bits) }
    }

    /// How many points match `filter`.
    func count(matching filter: Filter, context: Context = Context()) -> Int {
        withMatches(filter, context: context) { _, count in count }
    }
}
