import Foundation

/// Full-text search over one payload field: an inverted index in memory, ranked by BM25.
///
/// Built from the store's payloads when a collection opens and kept in step by every write, like
/// the payload index: the store is the durable copy, so the index is as crash-safe as the store.
///
/// A posting is (point, generation, term frequency). Rewriting or deleting a point bumps its
/// generation instead of searching the postings for it: its old postings go stale and are
/// skipped, and `tidy` drops them once they are as many as the live ones (amortized, a constant
/// cost per change).
package struct TextIndex: Sendable {
    let settings: TextSearch

    private var termNumbers: [String: Int32] = [:]
    /// By term number: the postings, packed as point << 32 | generation << 8 | min(tf, 255).
    private var postings: [[UInt64]] = []
    /// By term number: how many live points hold the term (BM25's n(q)).
    private var frequencies: [Int32] = []
    /// By internal id: the point's distinct terms with their frequencies, term << 8 | min(tf, 255),
    /// sorted; and its length in terms (0: it has no text).
    private var terms: [[UInt32]] = []
    private var lengths: [UInt32] = []
    /// By internal id: the generation its live postings carry.
    private var generations: [UInt32] = []
    /// Points with text, and their total length (BM25's N and avgdl).
    package private(set) var count = 0
    /// A point whose field held something other than text (left out), if any.
    private(set) var refused: UInt32?
    private var totalLength = 0
    private var livePostings = 0, stalePostings = 0

    private static let generationMask: UInt32 = 0xFF_FFFF
    /// Term numbers fit in 24 bits (`terms` packs them with a frequency): words beyond the
    /// 16,777,216th distinct one are not indexed.
    static let maximumTerms = 1 << 24

    package init(settings: TextSearch) { self.settings = settings }

    /// The text `payload` holds at the field: its strings (an array contributes each), nil if it
    /// holds none; throws a reason when the field holds something other than strings.
    static func texts(at field: String, in payload: Payload) throws(TextFieldError) -> [String]? {
        var texts: [String] = []
        for value in Filter.values(at: field, in: payload, containers: true) {
            switch value {
            case .string(let text): texts.append(text)
            case .null, .array: continue  // an array's elements come on their own
            case .bool, .number, .object: throw TextFieldError(field: field)
            }
        }
        return texts.isEmpty ? nil : texts
    }

    struct TextFieldError: Error, CustomStringConvertible {
        let field: String
        var description: String { "the text field \"\(field)\" must hold a string or an array of strings" }
    }

    // MARK: Changes

    /// Indexes point `id`'s text (replacing what it had); a payload whose field is not text
    /// leaves the point without any (`upsert` checks payloads before they come here).
    package mutating func upsert(_ id: UInt32, _ payload: Payload) {
        remove(id)
        let texts: [String]?
        do { texts = try Self.texts(at: settings.field, in: payload) } catch {
            if refused == nil { refused = id }
            return
        }
        guard let texts else { return }
        var counts: [Int32: Int] = [:]
        var length = 0
        for text in texts {
            Tokenizer.forEachTerm(in: text) { term in
                if let number = number(for: term) { counts[number, default: 0] += 1 }
                length += 1
            }
        }
        guard length > 0 else { return }
        let slot = Int(id)
        if generations.count <= slot {
            generations.append(contentsOf: repeatElement(0, count: slot + 1 - generations.count))
            terms.append(contentsOf: repeatElement([], count: slot + 1 - terms.count))
            lengths.append(contentsOf: repeatElement(0, count: slot + 1 - lengths.count))
        }
        let generation = UInt64(generations[slot] & Self.generationMask)
        var held: [UInt32] = []
        held.reserveCapacity(counts.count)
        for (term, tf) in counts {
            postings[Int(term)].append(UInt64(id) << 32 | generation << 8 | UInt64(min(tf, 255)))
            frequencies[Int(term)] += 1
            held.append(UInt32(term) << 8 | UInt32(min(tf, 255)))
        }
        terms[slot] = held.sorted()
        lengths[slot] = UInt32(min(length, Int(UInt32.max)))
        count += 1
        totalLength += Int(lengths[slot])
        livePostings += held.count
    }

    /// Forgets point `id`'s text, if it had any.
    package mutating func remove(_ id: UInt32) {
        let slot = Int(id)
        guard slot < lengths.count, lengths[slot] > 0 else { return }
        let held = terms[slot]
        for entry in held { frequencies[Int(entry >> 8)] -= 1 }
        generations[slot] &+= 1
        count -= 1
        totalLength -= Int(lengths[slot])
        livePostings -= held.count
        stalePostings += held.count
        terms[slot] = []
        lengths[slot] = 0
        // A generation that comes round again would revive its stale postings: drop them first.
        if generations[slot] & Self.generationMask == 0 { dropStalePostings() }
    }

    /// Drops stale postings once they are as many as the live ones.
    package mutating func tidy() {
        if stalePostings > max(livePostings, 4096) { dropStalePostings() }
    }

    private mutating func dropStalePostings() {
        let (lengths, generations) = (lengths, generations)
        for term in postings.indices where !postings[term].isEmpty {
            postings[term].removeAll { posting in
                let slot = Int(posting >> 32)
                return !Self.isCurrent(posting, length: lengths[slot], generation: generations[slot])
            }
        }
        stalePostings = 0
    }

    private static func generation(_ posting: UInt64) -> UInt32 { UInt32(truncatingIfNeeded: posting >> 8) & generationMask }

    private mutating func number(for term: String) -> Int32? {
        if let number = termNumbers[term] { return number }
        guard postings.count < Self.maximumTerms else { return nil }
        let number = Int32(postings.count)
        termNumbers[term] = number
        postings.append([])
        frequencies.append(0)
        return number
    }

    /// Takes in `later`, built from points whose ids are all above this one's.
    mutating func append(_ later: TextIndex) {
        var renumbered = [Int32](repeating: 0, count: later.postings.count)
        for (term, number) in later.termNumbers { renumbered[Int(number)] = self.number(for: term) ?? -1 }
        for (number, list) in later.postings.enumerated() where renumbered[number] >= 0 {
            let mine = Int(renumbered[number])
            postings[mine] += list
            frequencies[mine] += later.frequencies[number]
        }
        // Both cover internal ids from 0; `later` has none below its first point.
        if lengths.count < later.lengths.count {
            terms += repeatElement([], count: later.terms.count - terms.count)
            lengths += repeatElement(0, count: later.lengths.count - lengths.count)
            generations += repeatElement(0, count: later.generations.count - generations.count)
        }
        for slot in later.lengths.indices where later.lengths[slot] > 0 {
            terms[slot] = later.terms[slot].compactMap { entry in
                let mine = renumbered[Int(entry >> 8)]
                return mine < 0 ? nil : UInt32(mine) << 8 | entry & 0xFF
            }.sorted()
            lengths[slot] = later.lengths[slot]
            generations[slot] = later.generations[slot]
        }
        count += later.count
        refused = refused ?? later.refused
        totalLength += later.totalLength
        livePostings += later.livePostings
        stalePostings += later.stalePostings
    }

    // MARK: Search

    /// The points ranked by BM25 for `query`, best first: at most `limit`, only those with a
    /// positive score (holding at least one query term) and, given `allowed`, whose bit is set.
    /// Each distinct query term counts once.
    ///
    /// score(p) = Σ idf(t) · tf · (k1 + 1) / (tf + k1 · (1 − b + b · |p| / avgdl)), with
    /// idf(t) = ln(1 + (N − n(t) + 0.5) / (n(t) + 0.5)) (Lucene's, never negative).
    ///
    /// Terms are taken rarest first, each scanning its postings into one score per point,
    /// until what the rest could add to a point (their upper bounds, summed) falls below the
    /// `limit`-th best score so far: no point not yet scored can then make the result, and the
    /// rest are looked up only for the points that still can (MaxScore, term at a time). The
    /// common words of a query ("for", "library") are the longest lists, and mostly skipped.
    package func search(_ query: String, limit: Int, allowed: UnsafeBufferPointer<UInt64>? = nil) -> [(id: UInt32, score: Float)] {
        let queryTerms = terms(of: query).held
        guard !queryTerms.isEmpty, count > 0, limit > 0 else { return [] }
        let n = Double(count), k1 = Double(settings.k1), b = Double(settings.b)
        let averageLength = Double(totalLength) / n
        // A term adds weight · tf / (tf + base + perTerm · |p|): less than weight / (1 + perTerm),
        // since |p| ≥ tf.
        let base = Float(k1 * (1 - b)), perTerm = Float(k1 * b / averageLength)
        let weights = queryTerms.map { term -> Float in
            let df = Double(frequencies[Int(term)])
            return Float(log(1 + (n - df + 0.5) / (df + 0.5)) * (k1 + 1))
        }
        var rest = weights.map { $0 / (1 + perTerm) }  // rest[i]: the bound of terms i... together
        for i in rest.indices.dropLast().reversed() { rest[i] += rest[i + 1] }

        var scores = [Float](repeating: 0, count: lengths.count)
        var touched: [UInt32] = []
        let allLive = stalePostings == 0
        scores.withUnsafeMutableBufferPointer { scores in
            lengths.withUnsafeBufferPointer { lengths in
                generations.withUnsafeBufferPointer { generations in
                    for (i, term) in queryTerms.enumerated() {
                        let list = postings[Int(term)]
                        // Worth checking when the list is longer than a pass over the points scored.
                        if i > 0, touched.count >= limit, list.count > touched.count {
                            let threshold = Self.best(touched, scores: UnsafeBufferPointer(scores), limit: limit).last!.score
                            if rest[i] < threshold {
                                let open = touched.filter { scores[Int($0)] + rest[i] >= threshold }
                                for (j, term) in queryTerms.enumerated().dropFirst(i) {
                                    for id in open {
                                        guard let tf = frequency(of: term, in: Int(id)) else { continue }
                                        scores[Int(id)] += weights[j] * tf / (tf + base + perTerm * Float(lengths[Int(id)]))
                                    }
                                }
                                return
                            }
                        }
                        list.withUnsafeBufferPointer { list in
                            for posting in list {
                                let slot = Int(posting >> 32)
                                let length = lengths[slot]
                                // With no stale posting left, every posting is live (the common case).
                                guard allLive || Self.isCurrent(posting, length: length, generation: generations[slot]) else { continue }
                                if let allowed, slot >> 6 >= allowed.count || allowed[slot >> 6] >> UInt64(slot & 63) & 1 == 0 { continue }
                                let tf = Float(posting & 0xFF)
                                if scores[slot] == 0 { touched.append(UInt32(slot)) }
                                scores[slot] += weights[i] * tf / (tf + base + perTerm * Float(length))
                            }
                        }
                    }
                }
            }
        }
        return scores.withUnsafeBufferPointer { Self.best(touched, scores: $0, limit: limit) }
    }

    /// Sets in `bits` the points whose text holds every word of `query` (none if it has none).
    func setMatches(allOf query: String, in bits: UnsafeMutableBufferPointer<UInt64>) {
        let (terms, missing) = terms(of: query)
        guard !missing, !terms.isEmpty else { return }
        for posting in postings[Int(terms[0])] {
            let slot = Int(posting >> 32)
            guard Self.isCurrent(posting, length: lengths[slot], generation: generations[slot]),
                  terms.dropFirst().allSatisfy({ frequency(of: $0, in: slot) != nil }), slot >> 6 < bits.count else { continue }
            bits[slot >> 6] |= 1 << UInt64(slot & 63)
        }
    }

    /// The distinct terms of `query` that some point holds, rarest first; and whether any word
    /// of it is held by none.
    private func terms(of query: String) -> (held: [Int32], missing: Bool) {
        var unique = Set<Int32>(), missing = false
        Tokenizer.forEachTerm(in: query) { term in
            if let number = termNumbers[term], frequencies[Int(number)] > 0 { unique.insert(number) } else { missing = true }
        }
        return (unique.sorted { (postings[Int($0)].count, $0) < (postings[Int($1)].count, $1) }, missing)
    }

    /// A posting of a point's current text (not of one it had before a rewrite or delete).
    private static func isCurrent(_ posting: UInt64, length: UInt32, generation: UInt32) -> Bool {
        length > 0 && Self.generation(posting) == generation & generationMask
    }

    /// How often point `slot` holds `term` (nil: not at all), from its sorted term list.
    private func frequency(of term: Int32, in slot: Int) -> Float? {
        let held = terms[slot], key = UInt32(term) << 8
        var low = 0, high = held.count
        while low < high {
            let mid = (low + high) / 2
            if held[mid] < key { low = mid + 1 } else { high = mid }
        }
        return low < held.count && held[low] >> 8 == UInt32(term) ? Float(held[low] & 0xFF) : nil
    }

    /// The `limit` best of `ids` by `scores`, best first; ties go to the smaller id.
    private static func best(_ ids: [UInt32], scores: UnsafeBufferPointer<Float>, limit: Int) -> [(id: UInt32, score: Float)] {
        let better = { (x: (id: UInt32, score: Float), y: (id: UInt32, score: Float)) in
            x.score != y.score ? x.score > y.score : x.id < y.id
        }
        // The best seen, kept between `limit` and 2 · `limit` long: sorted and cut when full.
        var kept: [(id: UInt32, score: Float)] = []
        kept.reserveCapacity(2 * limit)
        var worst: (id: UInt32, score: Float)?
        for id in ids {
            let candidate = (id: id, score: scores[Int(id)])
            if let worst, !better(candidate, worst) { continue }
            kept.append(candidate)
            if kept.count == 2 * limit {
                kept.sort(by: better)
                kept.removeLast(limit)
                worst = kept[limit - 1]
            }
        }
        kept.sort(by: better)
        return Array(kept.prefix(limit))
    }

    // MARK: Checks

    /// What `verify` compares: the points with text, their lengths, and each term's frequency.
    var summary: [String: Int] {
        var summary: [String: Int] = ["points": count, "length": totalLength]
        for (term, number) in termNumbers where frequencies[Int(number)] > 0 { summary["term " + term] = Int(frequencies[Int(number)]) }
        return summary
    }
}

/// Full-text search on a payload field, ranked by BM25.
public struct TextSearch: Sendable, Codable, Equatable {
    /// The payload path holding the text: a key, or keys joined by dots into nested objects. It
    /// must hold a string or an array of strings (or nothing).
    public var field: String
    /// BM25's term-frequency saturation: a term's fifth occurrence counts less than its first.
    public var k1: Float
    /// BM25's length normalization: 0 ignores a text's length, 1 divides by it in full.
    public var b: Float

    /// Lucene's and Elasticsearch's defaults: k1 = 1.2, b = 0.75.
    public init(field: String, k1: Float = 1.2, b: Float = 0.75) {
        self.field = field
        self.k1 = k1
        self.b = b
    }

    func validate() throws(CollectionError) {
        guard !field.isEmpty else { throw .invalidParameter("the text field must not be empty") }
        guard k1.isFinite && k1 >= 0 else { throw .invalidParameter("k1 must be 0 or more, got \(k1)") }
        guard b.isFinite && b >= 0 && b <= 1 else { throw .invalidParameter("b must be in 0...1, got \(b)") }
    }
}
