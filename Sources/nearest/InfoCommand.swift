import ArgumentParser
import Nearest

struct InfoCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "info",
        abstract: "Print the version, the instruction set chosen, BLAS and OpenMP status, and thread count."
    )

    @OptionGroup var output: OutputOptions

    func run() throws {
        var report = Report()
        report.add("version", Runtime.version)
        report.add("instruction_set", Runtime.instructionSet.rawValue)
        report.add("blas", Runtime.blas)
        report.add("openmp", Runtime.openMP)
        report.add("threads", Runtime.hardwareThreads)
        report.print(json: output.json)
    }
}
