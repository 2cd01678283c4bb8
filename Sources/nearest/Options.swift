import ArgumentParser
import Nearest

/// Parses `l2`, `ip` or `cosine`.
func parseMetric(_ text: String) throws -> Metric {
    guard let metric = Metric(name: text) else {
        throw ValidationError("unknown metric '\(text)' (expected l2, ip or cosine)")
    }
    return metric
}

struct OutputOptions: ParsableArguments {
    @Flag(help: "Print one JSON object on stdout.")
    var json = false
}
