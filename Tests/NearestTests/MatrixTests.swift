import Nearest
import Testing

@Suite("Matrix")
struct MatrixTests {
    @Test("a matrix built from rows returns them row by row, and a row range views the same storage")
    func rowsAndViews() {
        let matrix = Matrix<Float>([[1, 2, 3], [4, 5, 6], [7, 8, 9], [10, 11, 12]])
        #expect(matrix.rows == 4 && matrix.columns == 3 && matrix.rowStride == 3)
        #expect(matrix[2] == [7, 8, 9])
        let middle = matrix.rows(1 ..< 3)
        #expect(middle.rows == 2 && middle[0] == [4, 5, 6] && middle[1] == [7, 8, 9])
        middle.withUnsafeElements { base, _ in
            matrix.withUnsafeElements { whole, stride in #expect(base == whole! + stride) }
        }
        #expect(matrix.rows(4 ..< 4).rows == 0)
    }

    @Test("the flat initializers lay elements out row-major")
    func rowMajor() {
        let a = Matrix<Int32>(rows: 2, columns: 3, elements: [1, 2, 3, 4, 5, 6])
        #expect(a[0] == [1, 2, 3] && a[1] == [4, 5, 6])
        let b = Matrix<Int32>(rows: 3, columns: 2) { buffer in
            for i in buffer.indices { buffer[i] = Int32(i * 10) }
        }
        #expect(b[2] == [40, 50])
        let empty = Matrix<Float>([])
        #expect(empty.rows == 0 && empty.columns == 0)
    }
}
