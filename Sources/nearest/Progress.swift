import Foundation

/// Progress on stderr: a redrawn bar on a terminal, a plain line every 10% otherwise.
struct Progress {
    let total: Int
    let label: String
    private let terminal = isatty(STDERR_FILENO) != 0
    private var lastDecile = -1

    init(total: Int, label: String) {
        self.total = total
        self.label = label
    }

    mutating func update(_ done: Int) {
        let fraction = total == 0 ? 1 : Double(done) / Double(total)
        if terminal {
            let width = 40, filled = Int(fraction * Double(width))
            let bar = String(repeating: "█", count: filled) + String(repeating: "·", count: width - filled)
            FileHandle.standardError.write(Data("\r\(label) \(bar) \(Int(fraction * 100))% (\(done)/\(total))".utf8))
            if done >= total { FileHandle.standardError.write(Data("\n".utf8)) }
        } else {
            let decile = Int(fraction * 10)
            if decile > lastDecile {
                lastDecile = decile
                FileHandle.standardError.write(Data("\(label): \(decile * 10)% (\(done)/\(total))\n".utf8))
            }
        }
    }
}
