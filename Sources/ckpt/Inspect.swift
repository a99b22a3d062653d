import ArgumentParser
import CkptKit
struct Inspect: ParsableCommand {
    static let configuration = CommandConfiguration(abstract: "Show tensors, dtypes, shapes, sizes and config of a checkpoint.")
    @Argument var path: String
    func run() throws {}
}
