/// Martin Porter's stemmer ("An algorithm for suffix stripping", 1980), step for step as his
/// reference C implementation (with its departures from the paper: -bli → -ble, -logi → -log).
/// Works on lower-case ASCII letters; callers leave other words as they are.
package enum PorterStemmer {
    /// Stems `word` in place.
    package static func stem(_ word: inout [UInt8]) {
        guard word.count > 2 else { return }
        var s = Stemming(b: [], k: word.count - 1)
        swap(&s.b, &word)  // the stemmer works in the caller's buffer: no copy
        s.step1ab()
        if s.k > 0 {
            s.step1c()
            s.step2()
            s.step3()
            s.step4()
            s.step5()
        }
        swap(&s.b, &word)
        word.removeSubrange(s.k + 1 ..< word.count)
    }

    /// The word b[0...k] and j, the end of the stem an ending was matched against.
    private struct Stemming {
        var b: [UInt8]
        var k: Int
        var j = 0

        /// b[i] is a consonant: not a vowel, and a 'y' only after a vowel or at the start.
        func consonant(_ i: Int) -> Bool {
            switch b[i] {
            case UInt8(ascii: "a"), UInt8(ascii: "e"), UInt8(ascii: "i"), UInt8(ascii: "o"), UInt8(ascii: "u"): false
            case UInt8(ascii: "y"): i == 0 ? true : !consonant(i - 1)
            default: true
            }
        }

        /// m, the number of vowel-consonant sequences in b[0...j]: [C](VC)^m[V].
        func measure() -> Int {
            var n = 0, i = 0
            while true {
                if i > j { return n }
                if !consonant(i) { break }
                i += 1
            }
            i += 1
            while true {
                while true {
                    if i > j { return n }
                    if consonant(i) { break }
                    i += 1
                }
                i += 1
                n += 1
                while true {
                    if i > j { return n }
                    if !consonant(i) { break }
                    i += 1
                }
                i += 1
            }
        }

        func vowelInStem() -> Bool { (0 ... max(j, 0)).contains { $0 <= j && !consonant($0) } }

        /// b[i-1...i] is a double consonant.
        func doubleConsonant(_ i: Int) -> Bool { i >= 1 && b[i] == b[i - 1] && consonant(i) }

        /// b[i-2...i] is consonant-vowel-consonant and the last is not w, x or y (-hop, not -snow).
        func cvc(_ i: Int) -> Bool {
            guard i >= 2, consonant(i), !consonant(i - 1), consonant(i - 2) else { return false }
            return b[i] != UInt8(ascii: "w") && b[i] != UInt8(ascii: "x") && b[i] != UInt8(ascii: "y")
        }

        /// b[0...k] ends with `suffix`; sets j to just before it.
        mutating func ends(_ suffix: StaticString) -> Bool {
            let length = suffix.utf8CodeUnitCount
            guard length <= k + 1 else { return false }
            let matches = suffix.withUTF8Buffer { s in
                (0 ..< length).allSatisfy { b[k - length + 1 + $0] == s[$0] }
            }
            if matches { j = k - length }
            return matches
        }

        /// Replaces b[j+1...k] with `ending`.
        mutating func set(_ ending: StaticString) {
            ending.withUTF8Buffer { s in
                b.replaceSubrange(j + 1 ..< k + 1, with: s)
            }
            k = j + ending.utf8CodeUnitCount
        }

        /// `set(ending)` when m > 0.
        mutating func replace(_ ending: StaticString) { if measure() > 0 { set(ending) } }

        /// Plurals and -ed or -ing: caresses → caress, ponies → poni, meetings → meet, hopping → hop.
        mutating func step1ab() {
            if b[k] == UInt8(ascii: "s") {
                if ends("sses") { k -= 2 }
                else if ends("ies") { set("i") }
                else if b[k - 1] != UInt8(ascii: "s") { k -= 1 }
            }
            if ends("eed") {
                if measure() > 0 { k -= 1 }
            } else if (ends("ed") || ends("ing")) && vowelInStem() {
                k = j
                if ends("at") { set("ate") }
                else if ends("bl") { set("ble") }
                else if ends("iz") { set("ize") }
                else if doubleConsonant(k) {
                    k -= 1
                    let c = b[k]
                    if c == UInt8(ascii: "l") || c == UInt8(ascii: "s") || c == UInt8(ascii: "z") { k += 1 }
                } else {
                    j = k
                    if measure() == 1 && cvc(k) { set("e") }
                }
            }
        }

        /// A final y becomes i after a vowel in the stem.
        mutating func step1c() {
            if ends("y") && vowelInStem() { b[k] = UInt8(ascii: "i") }
        }

        /// Double suffixes to single ones: -ization → -ize, -ational → -ate (when m > 0).
        mutating func step2() {
            guard k >= 1 else { return }
            switch b[k - 1] {
            case UInt8(ascii: "a"):
                if ends("ational") { replace("ate") } else if ends("tional") { replace("tion") }
            case UInt8(ascii: "c"):
                if ends("enci") { replace("ence") } else if ends("anci") { replace("ance") }
            case UInt8(ascii: "e"):
                if ends("izer") { replace("ize") }
            case UInt8(ascii: "l"):
                if ends("bli") { replace("ble") } else if ends("alli") { replace("al") }
                else if ends("entli") { replace("ent") } else if ends("eli") { replace("e") }
                else if ends("ousli") { replace("ous") }
            case UInt8(ascii: "o"):
                if ends("ization") { replace("ize") } else if ends("ation") { replace("ate") }
                else if ends("ator") { replace("ate") }
            case UInt8(ascii: "s"):
                if ends("alism") { replace("al") } else if ends("iveness") { replace("ive") }
                else if ends("fulness") { replace("ful") } else if ends("ousness") { replace("ous") }
            case UInt8(ascii: "t"):
                if ends("aliti") { replace("al") } else if ends("iviti") { replace("ive") }
                else if ends("biliti") { replace("ble") }
            case UInt8(ascii: "g"):
                if ends("logi") { replace("log") }
            default: break
            }
        }

        /// -ic-, -full, -ness and the like.
        mutating func step3() {
            switch b[k] {
            case UInt8(ascii: "e"):
                if ends("icate") { replace("ic") } else if ends("ative") { replace("") }
                else if ends("alize") { replace("al") }
            case UInt8(ascii: "i"):
                if ends("iciti") { replace("ic") }
            case UInt8(ascii: "l"):
                if ends("ical") { replace("ic") } else if ends("ful") { replace("") }
            case UInt8(ascii: "s"):
                if ends("ness") { replace("") }
            default: break
            }
        }

        /// Takes off -ant, -ence and the like where m > 1.
        mutating func step4() {
            guard k >= 1 else { return }
            let found: Bool
            switch b[k - 1] {
            case UInt8(ascii: "a"): found = ends("al")
            case UInt8(ascii: "c"): found = ends("ance") || ends("ence")
            case UInt8(ascii: "e"): found = ends("er")
            case UInt8(ascii: "i"): found = ends("ic")
            case UInt8(ascii: "l"): found = ends("able") || ends("ible")
            case UInt8(ascii: "n"): found = ends("ant") || ends("ement") || ends("ment") || ends("ent")
            case UInt8(ascii: "o"):
                found = (ends("ion") && j >= 0 && (b[j] == UInt8(ascii: "s") || b[j] == UInt8(ascii: "t"))) || ends("ou")
            case UInt8(ascii: "s"): found = ends("ism")
            case UInt8(ascii: "t"): found = ends("ate") || ends("iti")
            case UInt8(ascii: "u"): found = ends("ous")
            case UInt8(ascii: "v"): found = ends("ive")
            case UInt8(ascii: "z"): found = ends("ize")
            default: found = false
            }
            if found && measure() > 1 { k = j }
        }

        /// A final -e where m > 1 (or m = 1 and not after cvc), and -ll to -l where m > 1.
        mutating func step5() {
            j = k
            if b[k] == UInt8(ascii: "e") {
                let m = measure()
                if m > 1 || (m == 1 && !cvc(k - 1)) { k -= 1 }
            }
            if b[k] == UInt8(ascii: "l") && doubleConsonant(k) && measure() > 1 { k -= 1 }
        }
    }
}
