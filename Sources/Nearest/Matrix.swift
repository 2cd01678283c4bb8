/// An immutable row-major matrix: a batch of vectors, a file's rows, ground-truth ids.
///
/// Rows are `rowStride` elements apart (at least `columns`), which lets a matrix view a
/// memory-mapped `.fvecs` file in place, where each row is preceded by its length. Copies of a
/// `Matrix` share storage; the storage is freed (or unmapped) when the last copy goes.
///
/// ```swift
/// let batch = Matrix(rows: 2, columns: 3, elements: [1, 0, 0,  0, 1, 0])
/// let results = try index.search(batch, k: 10)
/// ```
public struct Matrix<Element: BitwiseCopyable> {
    public let rows: Int
    public let columns: Int
    /// Elements from the start of one row to the start of the next.
    public let rowStride: Int
    let base: UnsafePointer<Element>?
    let owner: AnyObject?

    /// Wraps memory kept alive by `owner`, which must never be written through again.
    init(base: UnsafePointer<Element>?, rows: Int, columns: Int, rowStride: Int, owner: AnyObject?) {
        precondition(rows >= 0 && columns >= 0 && rowStride >= columns)
        self.base = base
        self.rows = rows
        self.columns = columns
        self.rowStride = rowStride
        self.owner = owner
    }

    /// A matrix of `rows × columns` elements in row-major order.
    public init(rows: Int, columns: Int, elements: [Element]) {
        precondition(elements.count == rows * columns, "\(elements.count) elements for \(rows) × \(columns)")
        self.init(rows: rows, columns: columns) { buffer in
            _ = buffer.initialize(from: elements)
        }
    }

    /// A matrix filled in place by `initializer`, which receives `rows × columns` elements.
    public init(rows: Int, columns: Int,
                initializer: (UnsafeMutableBufferPointer<Element>) throws -> Void) rethrows {
        let storage = HeapStorage<Element>(count: rows * columns)
        try initializer(storage.buffer)
        self.init(base: UnsafePointer(storage.buffer.baseAddress), rows: rows, columns: columns,
                  rowStride: columns, owner: storage)
    }

    /// A matrix of the given rows, which must all have the same length.
    public init(_ vectors: [[Element]]) {
        let columns = vectors.first?.count ?? 0
        precondition(vectors.allSatisfy { $0.count == columns }, "rows of different lengths")
        self.init(rows: vectors.count, columns: columns) { buffer in
            for (r, row) in vectors.enumerated() {
                _ = UnsafeMutableBufferPointer(rebasing: buffer[r * columns ..< (r + 1) * columns])
                    .initialize(from: row)
            }
        }
    }

    /// A copy of row `index`.
    public subscript(index: Int) -> [Element] {
        precondition(index >= 0 && index < rows, "row \(index) out of 0..<\(rows)")
        return Array(UnsafeBufferPointer(start: base! + index * rowStride, count: columns))
    }

    /// A view of rows `range`, sharing storage.
    public func rows(_ range: Range<Int>) -> Matrix {
        precondition(range.lowerBound >= 0 && range.upperBound <= rows)
        return Matrix(base: base.map { $0 + range.lowerBound * rowStride }, rows: range.count,
                      columns: columns, rowStride: rowStride, owner: owner)
    }

    /// Calls `body` with the first element and the row stride; the memory is valid only inside.
    public func withUnsafeElements<R, E: Error>(
        _ body: (UnsafePointer<Element>?, _ rowStride: Int) throws(E) -> R
    ) throws(E) -> R {
        defer { withExtendedLifetime(owner) {} }
        return try body(base, rowStride)
    }
}

/// Heap memory owned by a matrix built in Swift.
final class HeapStorage<Element>: @unchecked Sendable {
    let buffer: UnsafeMutableBufferPointer<Element>
    init(count: Int) {
        buffer = .allocate(capacity: max(count, 1))
    }
    deinit { buffer.deallocate() }
}

// Immutable storage shared by copies: sending a matrix is safe whenever its elements are.
extension Matrix: @unchecked Sendable where Element: Sendable {}
