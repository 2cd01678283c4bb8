/// How text becomes search terms, the same for documents and queries: words are runs of letters
/// and digits (anything else separates them), case-folded; ASCII words are stemmed with
/// Porter's stemmer, others only lower-cased. A word longer than `maximumWordBytes` keeps its
/// first bytes (a bound on what one hostile word costs the dictionary).
package enum Tokenizer {
    package static let maximumWordBytes = 64

    /// Calls `body` with each term of `text`, in order, repeats included.
    static func forEachTerm(in text: String, _ body: (String) -> Void) {
        var word: [UInt8] = []
        word.reserveCapacity(32)
        var ascii = true
        func flush() {
            guard !word.isEmpty else { return }
            if ascii {
                if word.count <= maximumWordBytes { PorterStemmer.stem(&word) } else { word.removeLast(word.count - maximumWordBytes) }
                body(String(decoding: word, as: UTF8.self))
            } else {
                var folded = String(decoding: word, as: UTF8.self).lowercased()
                if folded.utf8.count > maximumWordBytes {  // cut at a character boundary
                    var end = folded.startIndex, bytes = 0
                    for c in folded where bytes + c.utf8.count <= maximumWordBytes {
                        bytes += c.utf8.count
                        end = folded.index(after: end)
                    }
                    folded = String(folded[..<end])
                }
                body(folded)
            }
            word.removeAll(keepingCapacity: true)
            ascii = true
        }
        for scalar in text.unicodeScalars {
            let v = scalar.value
            if v < 0x80 {
                let c = UInt8(v)
                let kept = word.count <= maximumWordBytes  // one past the limit marks a cut word
                switch c {
                case UInt8(ascii: "a") ... UInt8(ascii: "z"), UInt8(ascii: "0") ... UInt8(ascii: "9"): if kept { word.append(c) }
                case UInt8(ascii: "A") ... UInt8(ascii: "Z"): if kept { word.append(c | 0x20) }
                default: flush()
                }
            } else if scalar.properties.isAlphabetic || scalar.properties.numericType != nil {
                if word.count < 4 * maximumWordBytes { word.append(contentsOf: String(scalar).utf8) }
                ascii = false
            } else {
                flush()
            }
        }
        flush()
    }

    /// The terms of `text`, in order.
    package static func terms(_ text: String) -> [String] {
        var terms: [String] = []
        forEachTerm(in: text) { terms.append($0) }
        return terms
    }
}
