import Foundation
import Nearest
import NearestCollections
import NearestTestSupport
import Testing

@Suite("Collections survive kill -9 at any moment")
struct CrashSafetyTests {
    static let dimensions = 16

    /// Every point's vector follows from its id, so a reader can check what it finds.
    static func vector(_ id: UInt64) -> [Float] {
        var generator = SplitMix64(seed: id &+ 1)
        return randomVector(dimensions, &generator)
    }

    @Test("a process upserting and deleting in a loop, killed at random 50 times: every acknowledged change is there and the index agrees with the store")
    func killedWhileWriting() async throws {
        let directory = try TemporaryDirectory()
        let path = directory.path("c")
        let acknowledgements = directory.path("acknowledged")
        // A small indexing threshold, so that kills also land in graph inserts and snapshot saves.
        // A text field too: its index must agree with the store after every kill (verify checks).
        _ = try VectorCollection.create(at: path, configuration: .init(dimensions: Self.dimensions, metric: .l2, indexingThreshold: 150,
                                                                       text: TextSearch(field: "text")))
        FileManager.default.createFile(atPath: acknowledgements, contents: nil)
        var acknowledgedCount = 0
        for round in 0 ..< 50 {
            let seed = UInt64(round) &* 0x9E37_79B9 &+ 17
            await #expect(processExitsWith: .signal(SIGKILL)) { [path = path as String, acknowledgements = acknowledgements as String, seed = seed as UInt64] in
                var generator = SplitMix64(seed: seed)
                let delay = UInt32(20_000 + generator.next() % 180_000)  // 20 to 200 ms, opening included
                DispatchQueue.global().async {
                    usleep(delay)
                    kill(getpid(), SIGKILL)
                }
                let collection = try VectorCollection.open(at: path)
                let log = FileHandle(forWritingAtPath: acknowledgements)!
                log.seekToEndOfFile()
                var next = UInt64(seed % 1_000_000) * 1_000  // this round's own id range
                var written: [UInt64] = []
                for step in 0... {
                    if step % 5 == 4, written.count > 20 {
                        let doomed = Array(written.prefix(10))
                        written.removeFirst(10)
                        // A delete in flight when the kill lands may or may not have happened:
                        // "~" marks the intent, "-" the acknowledgement.
                        log.write(Data(doomed.map { "~\($0)\n" }.joined().utf8))
                        try collection.delete(doomed.map { .number($0) })
                        log.write(Data(doomed.map { "-\($0)\n" }.joined().utf8))
                    } else {
                        let ids = (0 ..< UInt64(1 + generator.next() % 40)).map { next + $0 }
                        next += UInt64(ids.count)
                        try collection.upsert(ids.map { Point(id: .number($0), vector: Self.vector($0), payload: ["round": .number(Double(seed % 1000)), "text": .string("point p\($0) of round \(seed % 1000)")]) })
                        written += ids
                        log.write(Data(ids.map { "+\($0)\n" }.joined().utf8))
                    }
                    if step % 17 == 16 { try collection.checkpoint() }
                }
            }
            // The acknowledged changes so far, in order: the last word on each id wins; an id whose
            // last word is an unacknowledged delete may be either way.
            let lines = try String(contentsOfFile: acknowledgements, encoding: .utf8).split(separator: "\n")
            var present: [UInt64: Bool] = [:]
            for line in lines {
                let id = UInt64(line.dropFirst())!
                if line.first == "~" { present[id] = nil } else { present[id] = line.first == "+" }
            }
            acknowledgedCount = lines.count
            let collection = try VectorCollection.open(at: path)
            #expect(try collection.verify() == [], "round \(round)")
            let alive = present.filter(\.value).map(\.key), dead = present.filter { !$0.value }.map(\.key)
            let found = try collection.get(alive.map { .number($0) })
            #expect(found.count == alive.count, "round \(round): \(alive.count - found.count) acknowledged points lost")
            #expect(found.allSatisfy { if case let .number(id) = $0.id { $0.vector == Self.vector(id) } else { false } },
                    "round \(round): a point came back with another vector")
            #expect(try collection.get(dead.map { .number($0) }).isEmpty, "round \(round): a deleted point came back")
            if let probe = alive.randomElement() {
                #expect(try await collection.search(Self.vector(probe), limit: 1, ef: 100).first?.id == .number(probe))
                // Its text's one rare word finds it, and only it.
                #expect(try await collection.search(.init(text: "p\(probe)"), limit: 5).map(\.id) == [.number(probe)])
            }
            if let gone = dead.randomElement() {
                #expect(try await collection.search(.init(text: "p\(gone)"), limit: 5).isEmpty, "round \(round): a deleted point's text is found")
            }
        }
        #expect(acknowledgedCount > 200, "too few acknowledged changes: the child barely ran")
        print("crash safety: \(acknowledgedCount) acknowledged changes over 50 kills")
    }
}
