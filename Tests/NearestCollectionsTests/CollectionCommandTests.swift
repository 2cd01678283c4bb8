import Foundation
import NearestTestSupport
import Testing

/// Runs the `nearest` executable built next to this test binary; returns status, stdout, stderr.
func nearest(_ arguments: [String]) throws -> (status: Int32, out: String, err: String) {
    let binary = URL(fileURLWithPath: CommandLine.arguments[0]).deletingLastPathComponent()
        .appendingPathComponent("nearest").path
    let process = Process()
    process.executableURL = URL(fileURLWithPath: binary)
    process.arguments = arguments
    let out = Pipe(), err = Pipe()
    process.standardOutput = out
    process.standardError = err
    try process.run()
    let output = out.fileHandleForReading.readDataToEndOfFile()
    let error = err.fileHandleForReading.readDataToEndOfFile()
    process.waitUntilExit()
    return (process.terminationStatus, String(decoding: output, as: UTF8.self), String(decoding: error, as: UTF8.self))
}

func jsonObject(_ text: String) throws -> [String: Any] {
    try #require(JSONSerialization.jsonObject(with: Data(text.utf8)) as? [String: Any])
}

@Suite("nearest collection: the command line end to end")
struct CollectionCommandTests {
    @Test("create, upsert JSON Lines, search with a filter, get, count, delete, info --verify, list, drop; bad input changes nothing")
    func endToEnd() throws {
        let directory = try TemporaryDirectory()
        let root = ["--root", directory.path("root")]
        let uuid = "67e55044-10b1-426f-9247-bb680e5fe0c8"
        let created = try nearest(["collection", "create", "docs", "--dimensions", "3", "--metric", "l2", "--json"] + root)
        #expect(created.status == 0, "\(created.err)")
        #expect(try jsonObject(created.out)["dimensions"] as? Int == 3)

        let points = directory.path("points.jsonl")
        try Data("""
            {"id": 1, "vector": [1, 0, 0], "payload": {"lang": "en", "year": 2020}}
            {"id": "\(uuid)", "vector": [0.9, 0.1, 0], "payload": {"lang": "de", "year": 2021}}

            {"id": 3, "vector": [0, 1, 0], "payload": {"lang": "en", "year": 2022, "tags": ["a", "b"]}}
            {"id": 4, "vector": [0, 0, 1]}
            """.utf8).write(to: URL(fileURLWithPath: points))
        let upserted = try nearest(["collection", "upsert", "docs", "--input", points, "--json"] + root)
        #expect(upserted.status == 0, "\(upserted.err)")
        #expect(try jsonObject(upserted.out)["points"] as? Int == 4)

        let search = try nearest(["collection", "search", "docs", "--vector", "[1, 0, 0]", "--limit", "2",
                                  "--filter", #"{"lang": "en"}"#, "--json"] + root)
        #expect(search.status == 0, "\(search.err)")
        let results = try #require(try jsonObject(search.out)["results"] as? [[String: Any]])
        #expect(results.map { $0["id"] as? Int } == [1, 3])
        #expect((results[0]["payload"] as? [String: Any])?["year"] as? Int == 2020)

        let got = try nearest(["collection", "get", "docs", "--ids", "\(uuid),4,99", "--json"] + root)
        let found = try #require(try jsonObject(got.out)["points"] as? [[String: Any]])
        #expect(found.map { "\($0["id"]!)" } == [uuid, "4"])

        let count = try nearest(["collection", "count", "docs", "--filter", #"{"year": {"$gte": 2021}}"#, "--json"] + root)
        #expect(try jsonObject(count.out)["count"] as? Int == 2)

        // Bad input: a wrong dimension on line 2, malformed JSON on line 3, an unknown operator.
        let bad = directory.path("bad.jsonl")
        try Data("{\"id\": 10, \"vector\": [1, 1, 1]}\n{\"id\": 11, \"vector\": [1, 1]}\n".utf8).write(to: URL(fileURLWithPath: bad))
        let refused = try nearest(["collection", "upsert", "docs", "--input", bad] + root)
        #expect(refused.status == 1)
        #expect(refused.err == "nearest: \(bad) line 2 (id 11): dimension mismatch: expected 3 values, got 2\n")
        try Data("{\"id\": 10, \"vector\": [1, 1, 1]}\n\n{\"id\": 12, \"vector\": [1, 1, 1}\n".utf8).write(to: URL(fileURLWithPath: bad))
        let malformed = try nearest(["collection", "upsert", "docs", "--input", bad] + root)
        #expect(malformed.status == 1)
        #expect(malformed.err.hasPrefix("nearest: \(bad) line 3, column "), "\(malformed.err)")
        let operatorError = try nearest(["collection", "count", "docs", "--filter", #"{"year": {"$near": 1}}"#] + root)
        #expect(operatorError.err == "nearest: invalid filter at 'year.$near': unknown operator '$near'\n")
        #expect(try jsonObject(try nearest(["collection", "count", "docs", "--json"] + root).out)["count"] as? Int == 4)

        let deleted = try nearest(["collection", "delete", "docs", "--filter", #"{"tags": "b"}"#, "--json"] + root)
        #expect(try jsonObject(deleted.out)["deleted"] as? Int == 1)
        let info = try nearest(["collection", "info", "docs", "--verify", "--json"] + root)
        let facts = try jsonObject(info.out)
        #expect(facts["points"] as? Int == 3 && facts["consistent"] as? Bool == true && facts["pending"] as? Int == 0)

        #expect(try jsonObject(try nearest(["collection", "list", "--json"] + root).out)["collections"] as? [String] == ["docs"])
        #expect(try nearest(["collection", "drop", "docs"] + root).status == 0)
        #expect(try nearest(["collection", "list"] + root).out.isEmpty)
        let missing = try nearest(["collection", "info", "docs"] + root)
        #expect(missing.status == 1 && missing.err == "nearest: no collection named 'docs'\n")
    }

    @Test("a text field at create; --text, --vector with --text (fused), and --queries: one JSON line per query, timing on stderr; bad lines named")
    func textAndBatchSearch() throws {
        let directory = try TemporaryDirectory()
        let root = ["--root", directory.path("root")]
        let created = try nearest(["collection", "create", "docs", "--dimensions", "2", "--metric", "l2", "--text-field", "body", "--json"] + root)
        #expect(created.status == 0, "\(created.err)")
        #expect(try jsonObject(created.out)["text field"] as? String == "body")
        let points = directory.path("points.jsonl")
        try Data("""
            {"id": 1, "vector": [0, 0], "payload": {"body": "swift vector database", "lang": "en"}}
            {"id": 2, "vector": [1, 0], "payload": {"body": "cooking with pears", "lang": "en"}}
            {"id": 3, "vector": [2, 0], "payload": {"body": "a database of recipes", "lang": "de"}}
            """.utf8).write(to: URL(fileURLWithPath: points))
        #expect(try nearest(["collection", "upsert", "docs", "--input", points] + root).status == 0)

        let text = try nearest(["collection", "search", "docs", "--text", "databases", "--no-payload", "--json"] + root)
        #expect(text.status == 0, "\(text.err)")
        let ranked = try #require(try jsonObject(text.out)["results"] as? [[String: Any]])
        #expect(ranked.map { $0["id"] as? Int } == [1, 3])  // the shorter text first
        #expect(ranked.allSatisfy { ($0["score"] as? Double ?? 0) > 0 })

        let queries = directory.path("queries.jsonl")
        try Data("""
            {"text": "pears"}
            {"vector": [2, 0]}
            {"vector": [1.9, 0], "text": "swift database", "filter": {"lang": "en"}}
            """.utf8).write(to: URL(fileURLWithPath: queries))
        let batch = try nearest(["collection", "search", "docs", "--queries", queries, "--limit", "2", "--no-payload", "--fusion", "dbsf"] + root)
        #expect(batch.status == 0, "\(batch.err)")
        let lines = batch.out.split(separator: "\n").map { try? jsonObject(String($0)) }
        let ids = lines.map { ($0?["results"] as? [[String: Any]])?.map { $0["id"] as? Int } }
        #expect(ids.count == 3)
        #expect(ids[0] == [2])
        #expect(ids[1] == [3, 2])
        #expect(ids[2]?.first == 1, "the filter keeps 3 out of both lists")
        let timing = try jsonObject(String(batch.err.split(separator: "\n").last ?? ""))
        #expect(timing["queries"] as? Int == 3 && (timing["seconds"] as? Double ?? -1) >= 0)

        try Data("{\"text\": \"ok\"}\n{\"vector\": \"oops\"}\n".utf8).write(to: URL(fileURLWithPath: queries))
        let bad = try nearest(["collection", "search", "docs", "--queries", queries] + root)
        #expect(bad.status == 1 && bad.err.contains("line 2: vector must be a JSON array of numbers"), "\(bad.err)")
        let noText = try nearest(["collection", "search", "docs", "--text", " -- "] + root)
        #expect(noText.status == 1 && noText.err.contains("no words"), "\(noText.err)")
        let neither = try nearest(["collection", "search", "docs"] + root)
        #expect(neither.status != 0)
    }
}
