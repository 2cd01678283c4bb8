import Nearest

/// A seeded, reproducible random generator (SplitMix64, Steele, Lea & Flood 2014): the same
/// seed gives the same vectors on every machine, so a failing case can be replayed.
public struct SplitMix64: RandomNumberGenerator, Sendable {
    public private(set) var state: UInt64

    public init(seed: UInt64) { state = seed }

    public mutating func next() -> UInt64 {
        state &+= 0x9E37_79B9_7F4A_7C15
        var z = state
        z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
        z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
        return z ^ (z >> 31)
    }

    /// A float uniformly drawn from [-1, 1), on a grid of 2⁻²³.
    public mutating func nextSigned() -> Float {
        Float(Int32(truncatingIfNeeded: next() >> 32) >> 8) * 0x1p-23
    }

    /// `count` floats from [-1, 1).
    public mutating func vector(_ count: Int) -> [Float] {
        (0 ..< count).map { _ in nextSigned() }
    }
}

extension Matrix where Element == Float {
    /// A `rows × columns` matrix of floats from [-1, 1) drawn from `generator`.
    public static func random(rows: Int, columns: Int, using generator: inout SplitMix64) -> Matrix<Float> {
        var values = [Float](repeating: 0, count: rows * columns)
        for i in values.indices { values[i] = generator.nextSigned() }
        return Matrix(rows: rows, columns: columns, elements: values)
    }

    /// A copy with every element multiplied by `factor`.
    public func scaled(by factor: Float) -> Matrix<Float> {
        Matrix(rows: rows, columns: columns, elements: (0 ..< rows).flatMap { self[$0].map { $0 * factor } })
    }

    /// All elements, row after row, without the row stride's gaps.
    public var elements: [Float] { (0 ..< rows).flatMap { self[$0] } }
}
