import ArgumentParser
import CkptKit
#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

struct Tokenize: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Token ids of a text (or the text of ids) with a model's tokenizer.",
        discussion: """
        TOKENIZER is a model folder, a tokenizer.json, a tokenizer.model, a GGUF file or a Hugging Face repo id from \
        the local cache. In a folder, tokenizer.json wins over tokenizer.model (as transformers 5 loads it; GGUF \
        export still reads tokenizer.model first, as llama.cpp's converter does). The two can differ: a \
        Metaspace-style tokenizer.json (what transformers 5 writes) does not add the dummy-prefix space to text \
        that already starts with a space, sentencepiece does. Ids equal the reference library's: tokenizers 0.23 \
        for tokenizer.json and GGUF gpt2 vocabularies, sentencepiece 0.2 for tokenizer.model and GGUF llama \
        vocabularies.

        Text comes from --text, --file, or standard input when neither is given. Special tokens are added as the \
        tokenizer's configuration says (transformers' encode(text): the post-processor's template, or BOS for \
        SentencePiece and GGUF); --no-special adds none. Special tokens written in the text are recognised. \
        Output: ids separated by spaces, or with --json an object with "ids" and "tokens", or with --count the \
        number of tokens. --jsonl FILE reads one JSON string per line and prints one JSON array of ids per line \
        (one count per line with --count). --decode IDS prints the text of ids given as 1,2,3 or a JSON array \
        (special tokens skipped, as the reference decoders do by default); an id outside the vocabulary is an error.
        """
    )

    @Argument(help: "A model folder, tokenizer.json, tokenizer.model, GGUF file or repo id.") var tokenizer: String
    @Option(help: "The text to tokenize.") var text: String?
    @Option(help: "Tokenize the contents of this file (UTF-8).") var file: String?
    @Option(help: "One JSON string per line (- for standard input): one JSON array of ids per line.") var jsonl: String?
    @Option(help: "Print the text of these ids (1,2,3 or a JSON array).") var decode: String?
    @Flag(help: "Add no special tokens (no BOS/EOS).") var noSpecial = false
    @Flag(help: "Print a JSON object with ids and tokens.") var json = false
    @Flag(help: "Print only the number of tokens.") var count = false
    @Option(help: "Threads for --jsonl (default: CKPT_THREADS or the CPU count).") var threads: Int?
    @OptionGroup var options: ModelOptions

    func validate() throws {
        let sources = [text != nil, file != nil, jsonl != nil, decode != nil].filter { $0 }.count
        if sources > 1 { throw ValidationError("give at most one of --text, --file, --jsonl, --decode") }
        if decode != nil && (count || noSpecial) { throw ValidationError("--count and --no-special apply to encoding, not to --decode") }
        if json && count { throw ValidationError("--json and --count cannot be combined") }
        if let t = threads, t < 1 { throw ValidationError("--threads must be at least 1") }
        if let d = decode, Tokenize.parseIDs(d) == nil {
            throw ValidationError("--decode takes ids as 1,2,3 or a JSON array of integers, not \(d.debugDescription)")
        }
    }

    func run() throws {
        try reportingErrors(json: json) {
            let tok = try Tokenizer.open(tokenizer, revision: options.revision)
            if let d = decode {
                let ids = Tokenize.parseIDs(d)!
                try tok.checkIDs(ids)
                let s = tok.decode(ids)
                Sys.writeStdout(json ? JSONWriter.compact(.object([("text", .string(s))])) + "\n" : s + "\n")
                return
            }
            if let path = jsonl {
                try encodeLines(tok, path)
                return
            }
            let input: String
            if let t = text {
                input = t
            } else {
                let b = try file.map(Tokenize.readAll) ?? Tokenize.readStandardInput()
                guard let s = String(validating: b, as: UTF8.self) else {
                    throw UsageError.invalidArgument("\(file ?? "standard input"): the text is not valid UTF-8")
                }
                input = s
            }
            var ctx = Tokenizer.Context()
            let ids = tok.encode(input, addSpecialTokens: !noSpecial, &ctx).map(Int.init)
            Sys.writeStdout(render(tok, ids) + "\n")
        }
    }

    func render(_ tok: Tokenizer, _ ids: [Int]) -> String {
        if count { return String(ids.count) }
        if json {
            return JSONWriter.compact(.object([("ids", .array(ids.map { .int($0) })),
                                               ("tokens", .array(ids.map { .string(tok.token($0) ?? "") }))]))
        }
        return ids.map(String.init).joined(separator: " ")
    }

    func encodeLines(_ tok: Tokenizer, _ path: String) throws {
        let bytes = path == "-" ? Tokenize.readStandardInput() : try Tokenize.readAll(path: path)
        var texts: [String] = []
        var lineNo = 0
        for line in bytes.split(separator: 0x0A, omittingEmptySubsequences: false) {
            lineNo += 1
            var l = line
            if l.last == 0x0D { l = l.dropLast() }
            if l.allSatisfy({ $0 == 0x20 || $0 == 0x09 }) { continue }
            let value: JSON
            do { value = try l.withUnsafeBytes { try JSONParser.parse($0) } } catch {
                throw UsageError.invalidArgument("\(path):\(lineNo): not a JSON string: \(error)")
            }
            guard let s = value.stringValue else { throw UsageError.invalidArgument("\(path):\(lineNo): not a JSON string") }
            texts.append(s)
        }
        let defaultThreads = Sys.environment("CKPT_THREADS").flatMap { Int($0) }.map { max(1, $0) } ?? max(1, Sys.cpuCount)
        let all = tok.encodeBatch(texts, addSpecialTokens: !noSpecial, threads: threads ?? defaultThreads)
        var out = ""
        out.reserveCapacity(all.reduce(0) { $0 + $1.count * 6 + 2 })
        for ids in all {
            if count {
                out += String(ids.count)
            } else if json {
                out += render(tok, ids.map(Int.init))
            } else {
                out += "["
                for (k, id) in ids.enumerated() {
                    if k > 0 { out += "," }
                    out += String(id)
                }
                out += "]"
            }
            out += "\n"
            if out.utf8.count > 1 << 20 {
                Sys.writeStdout(out)
                out = ""
            }
        }
        Sys.writeStdout(out)
    }

    /// "1,2,3", "1 2 3" or a JSON array of integers.
    static func parseIDs(_ s: String) -> [Int]? {
        let t = s.trimmingCharacters(in: " \t\n")
        if t.hasPrefix("[") {
            guard let j = try? JSONParser.parse(t), let a = j.arrayValue else { return nil }
            let ids = a.compactMap(\.intValue)
            return ids.count == a.count ? ids : nil
        }
        var ids: [Int] = []
        for part in t.split(whereSeparator: { $0 == "," || $0 == " " || $0 == "\t" || $0 == "\n" }) {
            guard let i = Int(part) else { return nil }
            ids.append(i)
        }
        return ids
    }

    static func readAll(path: String) throws -> [UInt8] {
        guard let st = Sys.status(path) else { throw UsageError.notFound(path: path) }
        if st.size == 0 { return [] }
        let f = try MappedFile(path: path)
        return Array(f.all)
    }

    static func readStandardInput() -> [UInt8] {
        var out: [UInt8] = []
        var buf = [UInt8](repeating: 0, count: 1 << 16)
        while true {
            let n = buf.withUnsafeMutableBytes { read(0, $0.baseAddress, $0.count) }
            if n <= 0 { break }
            out += buf[0..<n]
        }
        return out
    }
}

extension String {
    fileprivate func trimmingCharacters(in set: String) -> String {
        let chars = Set(set.unicodeScalars)
        let s = unicodeScalars.drop { chars.contains($0) }
        return String(String.UnicodeScalarView(s.reversed().drop { chars.contains($0) }.reversed()))
    }
}
