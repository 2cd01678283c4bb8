import CNearest

/// Facts about this build and this machine, as `nearest info` prints them.
public enum Runtime {
    /// The version of swift-nearest.
    public static let version = "0.1.0"

    /// The instruction set the kernels use by default here.
    public static var instructionSet: InstructionSet { .best }

    /// Whether the C core was built with OpenMP (`NEAREST_OPENMP=1`); otherwise it runs its
    /// parallel loops on its own pthread pool.
    public static var openMP: Bool { nn_built_with_openmp() }

    /// OpenBLAS's description of itself: version, CPU kernel, threading.
    public static var blas: String { String(cString: nn_blas_config()) }

    /// The number of online processors: the default thread count.
    public static var hardwareThreads: Int { nn_hardware_threads() }
}
