import Foundation
import Nearest
import NearestCollections

// The readers that hostile input reaches, as one libFuzzer target. The first byte picks the
// reader; the rest is its input:
//   0  a JSON Lines point (`nearest collection upsert --input`)
//   1  a filter (`--filter`, `Filter(parsing:)`)
//   2  an index file, loaded in full and mapped, then searched
// Built with `-sanitize=fuzzer` and `-DFUZZING` it is a libFuzzer binary (see Fuzz/README.md);
// built plainly, it replays the files it is given (a corpus, or a crash a fuzz run saved).

/// Runs one input through its reader. Every outcome but a crash, a hang or a sanitizer report
/// is fine: hostile input must end in an error.
func fuzzOne(_ data: UnsafeRawBufferPointer) {
    guard let selector = data.first else { return }
    let body = UnsafeRawBufferPointer(rebasing: data.dropFirst())
    switch selector % 3 {
    case 0:
        var bytes = [UInt8](body)
        bytes.append(0)  // the reader may look one byte past the end
        bytes.withUnsafeBufferPointer { buffer in
            var reader = JSONReader(buffer.baseAddress!, count: buffer.count - 1)
            _ = try? reader.point()
        }
    case 1:
        guard let text = String(validating: body, as: UTF8.self) else { return }
        if let filter = try? Filter(parsing: text) {
            _ = filter.matches(["a": 1, "b": ["c": "x", "d": [1, 2, nil]], "e": true])
        }
    default:
        let path = NSTemporaryDirectory() + "nearest-fuzz-\(getpid()).hnsw"
        guard FileManager.default.createFile(atPath: path, contents: Data(body)) else { return }
        defer { unlink(path) }
        for index in [try? HNSWIndex(contentsOf: path), try? HNSWIndex(mapping: path)].compactMap({ $0 }) {
            _ = try? index.search([Float](repeating: 0.5, count: index.dimensions), k: 3, ef: 16)
        }
    }
}

#if FUZZING
/// libFuzzer's entry for programs with a main of their own (SwiftPM gives every executable one).
@_silgen_name("LLVMFuzzerRunDriver")
func LLVMFuzzerRunDriver(_ argc: UnsafeMutablePointer<CInt>,
                         _ argv: UnsafeMutablePointer<UnsafeMutablePointer<UnsafeMutablePointer<CChar>?>>,
                         _ test: @convention(c) (UnsafePointer<UInt8>?, Int) -> CInt) -> CInt

@main
struct Fuzz {
    static func main() {
        var argc = CommandLine.argc
        var argv = CommandLine.unsafeArgv
        exit(LLVMFuzzerRunDriver(&argc, &argv) { data, size in
            fuzzOne(UnsafeRawBufferPointer(start: data, count: size))
            return 0
        })
    }
}
#else
@main
struct Replay {
    /// `nearest-fuzz FILE|DIR ...`: runs every file (every file in every directory) once.
    static func main() throws {
        var count = 0
        for argument in CommandLine.arguments.dropFirst() {
            var isDirectory: ObjCBool = false
            guard FileManager.default.fileExists(atPath: argument, isDirectory: &isDirectory) else {
                throw CocoaError(.fileNoSuchFile, userInfo: [NSFilePathErrorKey: argument])
            }
            let files = isDirectory.boolValue
                ? try FileManager.default.contentsOfDirectory(atPath: argument).sorted().map { argument + "/" + $0 }
                : [argument]
            for file in files {
                let data = try Data(contentsOf: URL(fileURLWithPath: file))
                data.withUnsafeBytes { fuzzOne($0) }
                count += 1
            }
        }
        print("replayed \(count) inputs")
    }
}
#endif
