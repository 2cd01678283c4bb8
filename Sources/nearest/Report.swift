import ArgumentParser
import Foundation
import Nearest
import NearestCollections

/// What a command prints: one JSON object on stdout with `--json` (a contract scripts rely on),
/// otherwise aligned `key: value` lines.
struct Report {
    private var fields: [(String, Any)] = []

    mutating func add(_ key: String, _ value: Any) { fields.append((key, value)) }

    func print(json: Bool) {
        if json {
            var object: [String: Any] = [:]
            for (key, value) in fields { object[key] = Self.jsonSafe(value) }
            guard let data = try? JSONSerialization.data(withJSONObject: object, options: [.sortedKeys]) else {
                FileHandle.standardError.write(Data("error: the report cannot be written as JSON\n".utf8))
                return
            }
            Swift.print(String(decoding: data, as: UTF8.self))
        } else {
            let width = fields.map(\.0.count).max() ?? 0
            for (key, value) in fields {
                Swift.print(key.padding(toLength: width, withPad: " ", startingAt: 0) + "  " + Self.text(value))
            }
        }
    }

    /// JSON has no infinity or NaN: such numbers are written as null.
    private static func jsonSafe(_ value: Any) -> Any {
        switch value {
        case let number as Double: number.isFinite ? number : NSNull()
        case let number as Float: number.isFinite ? number : NSNull()
        case let list as [Any]: list.map(jsonSafe)
        case let object as [String: Any]: object.mapValues(jsonSafe)
        default: value
        }
    }

    private static func text(_ value: Any) -> String {
        switch value {
        case let number as Double: String(format: number >= 100 ? "%.1f" : "%.4f", number)
        case let list as [Any]: list.map { text($0) }.joined(separator: ", ")
        default: "\(value)"
        }
    }
}

/// Runs a command body; a NearestError becomes one line on stderr and exit status 1.
func reportingErrors(_ body: () throws -> Void) throws {
    do { try body() } catch { try failOrRethrow(error) }
}

/// `reportingErrors` for async commands.
func reportingErrorsAsync(_ body: () async throws -> Void) async throws {
    do { try await body() } catch { try failOrRethrow(error) }
}

/// Errors about the input or the data end the command with one line; others are rethrown.
private func failOrRethrow(_ error: any Error) throws -> Never {
    switch error {
    case let error as NearestError: fail(error.description)
    case let error as CollectionError: fail(error.description)
    case let error as InputError: fail(error.description)
    default: throw error
    }
}

private func fail(_ message: String) -> Never {
    FileHandle.standardError.write(Data("nearest: \(message)\n".utf8))
    exit(1)
}

/// Seconds taken by `body`.
func timed<T>(_ body: () throws -> T) rethrows -> (T, Double) {
    let clock = ContinuousClock()
    var result: T?
    let elapsed = try clock.measure { result = try body() }
    return (result!, Double(elapsed.components.seconds) + Double(elapsed.components.attoseconds) * 1e-18)
}
