import ArgumentParser
import CkptKit

// The values options take, parsed by swift-argument-parser: a bad value is a usage error (exit 64, with the usage
// line), never an ad-hoc message from inside a command.

/// `--to`: the output format.
enum OutputFormat: String, ExpressibleByArgument, CaseIterable {
    case safetensors, bin, gguf

    var shardFormat: ShardLayout.Format? { ShardLayout.Format(rawValue: rawValue) }
}

/// `--dtype` of writing commands.
enum DTypeArgument: String, ExpressibleByArgument, CaseIterable {
    case f32, f16, bf16, q8_0, auto

    init?(argument: String) {
        switch argument.lowercased() {
        case "f32", "float32", "fp32": self = .f32
        case "f16", "float16", "fp16", "half": self = .f16
        case "bf16", "bfloat16": self = .bf16
        case "q8_0": self = .q8_0
        case "auto": self = .auto
        default: return nil
        }
    }

    var dtype: DType? {
        switch self {
        case .f32: .F32
        case .f16: .F16
        case .bf16: .BF16
        case .q8_0: .Q8_0
        case .auto: nil
        }
    }
}

/// `--scheme` of quantize.
enum SchemeArgument: String, ExpressibleByArgument, CaseIterable {
    case int8Channel = "int8-channel", int8Group = "int8-group", q8_0
}

/// `--from` of convert.
enum SourceLayout: String, ExpressibleByArgument, CaseIterable {
    case hf, meta
}

/// A size such as 5GB, 500MB or 2GiB (decimal units as transformers parses them).
struct ByteSizeArgument: ExpressibleByArgument {
    let bytes: Int
    let text: String
    init?(argument: String) {
        guard let b = ByteSize.parse(argument) else { return nil }
        bytes = b
        text = argument
    }
    init(_ text: String) {
        self.init(argument: text)!
    }
    var defaultValueDescription: String { text }
}

/// Options every writing command shares.
struct OutputOptions: ParsableArguments {
    @Flag(help: "Replace an earlier ckpt output of a different command (only files its journal lists are removed). An interrupted run of the same command resumes without it.")
    var overwrite = false
    @Flag(help: "Check everything and print the plan (files, tensors, sizes, operations, warnings); write nothing.")
    var dryRun = false
    @Flag(help: "Print a JSON summary on stdout.") var json = false
    @Flag(name: [.short, .long], help: "Print nothing on success but warnings and errors (no summary, no progress).")
    var quiet = false

    func validate() throws {
        if json && quiet { throw ValidationError("--json and --quiet cannot be combined") }
    }

    /// The run context: notices go to stderr as soon as the plan is checked.
    func context() -> RunContext {
        let quiet = self.quiet
        return RunContext(command: ["ckpt"] + CommandLine.arguments.dropFirst(), showProgress: !quiet && Sys.isTerminal(2),
                          dryRun: dryRun) { notice in
            switch notice {
            case .warning(let w): Sys.writeStderr("ckpt: warning: \(w)\n")
            case .note(let n): if !quiet { Sys.writeStderr("ckpt: note: \(n)\n") }
            }
        }
    }
}

/// The one summary every writing command prints: a line of text, or a JSON object with --json.
struct RunSummary {
    var output: String
    var tensors: Int
    var bytes: Int
    var seconds: Double
    var files: [(String, String)] = []
    var reused: [String] = []
    var upToDate = false
    var plan: PlanDescription?
    var notes: [String] = []
    var warnings: [String] = []
    /// Inputs given as repo ids or cache folders, and the snapshot each resolved to.
    var resolved: [(String, String)] = []
    /// Extra JSON members (a quality report).
    var extra: [(String, JSON)] = []

    func print(_ o: OutputOptions, text extraText: String = "") {
        if o.json {
            var members: [(String, JSON)] = [("output", .string(output))]
            if let plan {
                members += [("dry_run", .bool(true)), ("plan", plan.json)]
            } else {
                members += [("tensors", .int(tensors)), ("bytes", .int(bytes)), ("seconds", .number(NumberFormat.fixed(seconds, 3))),
                            ("files", .object(files.map { ($0.0, .string($0.1)) })), ("reused", .array(reused.map { .string($0) })),
                            ("up_to_date", .bool(upToDate))]
            }
            members += [("inputs", .object(resolved.map { ($0.0, .string($0.1)) })),
                        ("notes", .array(notes.map { .string($0) })), ("warnings", .array(warnings.map { .string($0) }))]
            Sys.writeStdout(JSONWriter.python(.object(members + extra), sortKeys: false) + "\n")
            return
        }
        if o.quiet { return }
        for (arg, path) in resolved { Sys.writeStderr("ckpt: note: \(arg) is the cached snapshot \(path)\n") }
        if let plan {
            var s = "dry run: nothing written. \(output) would get \(plan.tensors) tensors, \(NumberFormat.bytes(plan.bytes)) in \(plan.files.count) files:\n"
            s += Table.render(headers: ["file", "bytes"], rows: plan.files.map { [$0.name, NumberFormat.grouped($0.bytes)] }, rightAligned: [1])
            s += Table.render(headers: ["operation", "tensors"], rows: plan.operations.map { [$0.0, String($0.1)] }, rightAligned: [1])
            Sys.writeStdout(s)
            return
        }
        if upToDate {
            Sys.writeStdout("up to date: \(output) (every file re-hashed and equal to the journal; nothing written)\n")
            return
        }
        if !extraText.isEmpty { Sys.writeStdout(extraText); return }
        let rate = Double(bytes) / max(seconds, 1e-9)
        var line = "wrote \(output): \(tensors) tensors, \(NumberFormat.bytes(bytes)) in \(files.count) files, \(NumberFormat.fixed(seconds, 2)) s (\(NumberFormat.bytes(Int(rate)))/s)"
        if !reused.isEmpty { line += "; resumed: \(reused.count) file\(reused.count == 1 ? "" : "s") already done" }
        Sys.writeStdout(line + "\n")
    }

    /// The repo ids / cache folders among `args` and the snapshot folders they resolved to.
    static func resolutions(_ args: [String], revision: String?) -> [(String, String)] {
        args.compactMap { a in
            guard let p = try? ModelFolder.resolve(a, revision: revision), p != a, p.contains("/snapshots/") else { return nil }
            return (a, p)
        }
    }
}
