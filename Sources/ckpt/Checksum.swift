import ArgumentParser
import CkptKit
struct Checksum: ParsableCommand {
    @Argument var paths: [String]
    func run() throws {}
}
