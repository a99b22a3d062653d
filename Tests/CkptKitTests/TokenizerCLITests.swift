import Foundation
import Testing
@testable import CkptKit

/// A tokenizer.json with one member replaced (the error tests start from a real file and break one thing).
private func mutated(_ rel: String, _ tmp: TempDir, _ edit: (inout [(String, JSON)]) -> Void) throws -> String {
    guard var top = try Fx.json(rel).objectMembers else { throw TokenizerError.malformed(file: rel, detail: "not an object") }
    edit(&top)
    let out = tmp.sub("tokenizer.json")
    try tmp.write("tokenizer.json", JSONWriter.compact(.object(top)))
    return out
}

private func set(_ members: inout [(String, JSON)], _ key: String, _ value: JSON) {
    if let i = members.firstIndex(where: { $0.0 == key }) { members[i].1 = value } else { members.append((key, value)) }
}

private func edit(_ members: inout [(String, JSON)], _ key: String, _ body: (inout [(String, JSON)]) -> Void) {
    guard let i = members.firstIndex(where: { $0.0 == key }), var inner = members[i].1.objectMembers else { return }
    body(&inner)
    members[i].1 = .object(inner)
}

@Suite struct TokenizerErrorTests {
    @Test func aUnigramModelIsRefusedByName() throws {
        let p = Fx.path("tokenizers/spm-unigram.model")
        #expect(throws: TokenizerError.unigramModel(file: p)) { try Tokenizer(path: p) }
    }

    @Test func aGGUFPreTokenizerOtherThanLlamaBPEOrQwen2IsRefused() throws {
        let p = Fx.path("tokenizers/unknown-pre.gguf")
        #expect(throws: TokenizerError.unsupportedGGUFVocabulary(file: p, key: "tokenizer.ggml.pre", value: "gpt-4o")) {
            try Tokenizer(path: p)
        }
    }

    @Test func unsupportedTokenizerJSONComponentsAreRefusedByName() throws {
        let tmp = TempDir()
        let spm = "tokenizers/spm-legacy.tokenizer.json", bl = "tokenizers/llama3.tokenizer.json"
        var p = try mutated(spm, tmp) { m in edit(&m, "model") { set(&$0, "type", .string("WordPiece")) } }
        #expect(throws: TokenizerError.unsupportedComponent(file: p, stage: "model", type: "WordPiece")) { try Tokenizer(path: p) }
        p = try mutated(spm, tmp) { m in edit(&m, "model") { set(&$0, "type", .string("Unigram")) } }
        #expect(throws: TokenizerError.unsupportedComponent(file: p, stage: "model", type: "Unigram")) { try Tokenizer(path: p) }
        p = try mutated(spm, tmp) { m in edit(&m, "model") { set(&$0, "dropout", .number("0.1")) } }
        #expect(throws: TokenizerError.dropout(file: p, value: "0.1")) { try Tokenizer(path: p) }
        p = try mutated(spm, tmp) { set(&$0, "normalizer", .object([("type", .string("NFKC"))])) }
        #expect(throws: TokenizerError.unsupportedComponent(file: p, stage: "normalizer", type: "NFKC")) { try Tokenizer(path: p) }
        p = try mutated(spm, tmp) { set(&$0, "decoder", .object([("type", .string("CTC"))])) }
        #expect(throws: TokenizerError.unsupportedComponent(file: p, stage: "decoder", type: "CTC")) { try Tokenizer(path: p) }
        p = try mutated(spm, tmp) { set(&$0, "post_processor", .object([("type", .string("RobertaProcessing"))])) }
        #expect(throws: TokenizerError.unsupportedComponent(file: p, stage: "post_processor", type: "RobertaProcessing")) { try Tokenizer(path: p) }
        p = try mutated(spm, tmp) { set(&$0, "truncation", .object([("max_length", .int(8))])) }
        #expect(throws: TokenizerError.unsupportedOption(file: p, stage: "truncation", detail: "a non-null truncation")) { try Tokenizer(path: p) }
        p = try mutated(spm, tmp) { m in edit(&m, "model") { set(&$0, "merges", .array([.string("\u{2581} nope")])) } }
        #expect(throws: TokenizerError.malformed(file: p, detail: "merge 1 \"▁ nope\": a token is not in the vocabulary")) { try Tokenizer(path: p) }

        // byte-level: an unknown Split pattern, the GPT-2 regex of ByteLevel
        let gpt2 = #"'s|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)|\s+"#
        p = try mutated(bl, tmp) { m in
            set(&m, "pre_tokenizer", .object([("type", .string("Sequence")), ("pretokenizers", .array([
                .object([("type", .string("Split")), ("pattern", .object([("Regex", .string(gpt2))])),
                         ("behavior", .string("Isolated")), ("invert", .bool(false))]),
                .object([("type", .string("ByteLevel")), ("add_prefix_space", .bool(false)), ("use_regex", .bool(false))])]))]))
        }
        #expect(throws: TokenizerError.unknownSplitPattern(file: p, pattern: gpt2)) { try Tokenizer(path: p) }
        p = try mutated(bl, tmp) { m in
            set(&m, "pre_tokenizer", .object([("type", .string("ByteLevel")), ("add_prefix_space", .bool(false)), ("use_regex", .bool(true))]))
        }
        #expect(throws: TokenizerError.unsupportedOption(file: p, stage: "pre_tokenizer ByteLevel", detail: "use_regex true (the GPT-2 pattern)")) {
            try Tokenizer(path: p)
        }
    }

    @Test func aFolderWithoutTokenizerAndIDsOutsideTheVocabulary() throws {
        let tmp = TempDir()
        #expect(throws: TokenizerError.noTokenizer(path: tmp.path)) { try Tokenizer(path: tmp.path) }
        let tok = try Tokenizer(path: Fx.path("tokenizer/tokenizer.model"))
        #expect(throws: TokenizerError.idOutOfRange(id: 1000, vocabularySize: 1000)) { try tok.checkIDs([1, 1000]) }
        #expect(throws: TokenizerError.idOutOfRange(id: -1, vocabularySize: 1000)) { try tok.checkIDs([-1]) }
        try tok.checkIDs([0, 999])
    }
}

@Suite struct TokenizeCommandTests {
    static func expected(_ kind: String, _ text: String) throws -> (ids: [Int], special: [Int]) {
        let e = try Fx.json("tokenizers/expected/\(kind).json")
        let i = try #require(TokFx.texts.firstIndex { $0.utf8.elementsEqual(text.utf8) })
        return (TokFx.ints(e["ids"]!.arrayValue![i]), TokFx.ints(e["ids_special"]!.arrayValue![i]))
    }

    static func ids(_ out: String) -> [Int] { out.split(whereSeparator: { $0 == " " || $0 == "\n" }).compactMap { Int($0) } }

    /// A folder with both files uses tokenizer.json (transformers' ids, not sentencepiece's, on " Hello").
    @Test func aFolderUsesTokenizerJSONFirst() throws {
        let hf = try Self.expected("tiny-llama-json", " Hello"), sp = try Self.expected("spm", " Hello")
        #expect(hf.special != sp.special)
        let r = try CLI.run(["tokenize", Fx.tinyLlama, "--text", " Hello"])
        #expect(r.status == 0 && Self.ids(r.stdout) == hf.special, "\(r.stdout)\(r.stderr)")
        let m = try CLI.run(["tokenize", Fx.path("tiny-llama/tokenizer.model"), "--text", " Hello"])
        #expect(m.status == 0 && Self.ids(m.stdout) == sp.special)
    }

    @Test func encodeOutputs() throws {
        let tok = Fx.path("tokenizers/llama3.tokenizer.json")
        let text = "<|start_header_id|>user<|end_header_id|>\n\nHi<|eot_id|>"
        let want = try Self.expected("llama3-json", text)
        let plain = try CLI.run(["tokenize", tok, "--text", text])
        #expect(plain.status == 0 && Self.ids(plain.stdout) == want.special)
        let none = try CLI.run(["tokenize", tok, "--text", text, "--no-special"])
        #expect(Self.ids(none.stdout) == want.ids)
        let count = try CLI.run(["tokenize", tok, "--text", text, "--count"])
        #expect(count.stdout == "\(want.special.count)\n")
        let json = try CLI.run(["tokenize", tok, "--text", text, "--json", "--no-special"])
        let j = try JSONParser.parse(json.stdout)
        #expect(TokFx.ints(j["ids"]) == want.ids)
        #expect(j["tokens"]?.arrayValue?.first?.stringValue == "<|start_header_id|>")
        // standard input and --file: the same text
        let tmp = TempDir()
        try tmp.write("t.txt", text)
        #expect(Self.ids(try CLI.run(["tokenize", tok, "--file", tmp.sub("t.txt")]).stdout) == want.special)
        let piped = try CLI.shell("printf '%s' 'Hello world' | '\(CLI.executable)' tokenize '\(tok)' --no-special")
        #expect(Self.ids(piped.stdout) == (try Self.expected("llama3-json", "Hello world")).ids)
        // GGUF vocabularies
        let g = try CLI.run(["tokenize", Fx.path("tokenizers/llama-spm.gguf"), "--text", " Hello"])
        #expect(Self.ids(g.stdout) == (try Self.expected("spm", " Hello")).special)
    }

    @Test func jsonLinesAreEncodedInOrder() throws {
        let texts = Array(TokFx.texts.prefix(60))
        let tmp = TempDir()
        try tmp.write("in.jsonl", texts.map { JSONWriter.compact(.string($0)) }.joined(separator: "\n") + "\n")
        let r = try CLI.run(["tokenize", Fx.path("tokenizers/qwen2.tokenizer.json"), "--jsonl", tmp.sub("in.jsonl"), "--no-special", "--threads", "2"])
        #expect(r.status == 0, "\(r.stderr)")
        let lines = r.stdout.split(separator: "\n", omittingEmptySubsequences: false).dropLast()
        #expect(lines.count == texts.count)
        for (k, line) in lines.enumerated() {
            let got = try JSONParser.parse(String(line)).arrayValue?.compactMap(\.intValue)
            #expect(got == (try Self.expected("qwen2-json", texts[k])).ids, "\(texts[k].debugDescription)")
        }
        let counts = try CLI.run(["tokenize", Fx.path("tokenizers/qwen2.tokenizer.json"), "--jsonl", tmp.sub("in.jsonl"), "--count"])
        #expect(counts.stdout.split(separator: "\n").count == texts.count)
    }

    @Test func decodeIDs() throws {
        let tok = Fx.path("tokenizers/llama3.tokenizer.json")
        let want = try Self.expected("llama3-json", "Hello world")
        let list = want.special.map(String.init).joined(separator: ",")
        let r = try CLI.run(["tokenize", tok, "--decode", list])
        #expect(r.status == 0 && r.stdout == "Hello world\n", "\(r.stdout)\(r.stderr)")
        let arr = try CLI.run(["tokenize", tok, "--decode", "[\(list)]"])
        #expect(arr.stdout == "Hello world\n")
        let bad = try CLI.run(["tokenize", tok, "--decode", "1,99999"])
        #expect(bad.status == 1 && bad.stderr.contains("99999"), "\(bad.stderr)")
    }

    @Test func usageErrorsExit64() throws {
        let tok = Fx.path("tokenizer/tokenizer.model")
        #expect(try CLI.run(["tokenize", tok, "--text", "a", "--decode", "1"]).status == 64)
        #expect(try CLI.run(["tokenize", tok, "--decode", "one,two"]).status == 64)
        #expect(try CLI.run(["tokenize", tok, "--json", "--count", "--text", "a"]).status == 64)
        let missing = try CLI.run(["tokenize", Fx.path("tokenizers/spm-unigram.model"), "--text", "a"])
        #expect(missing.status == 1 && missing.stderr.contains("unigram"))
    }
}

@Suite struct TokenizerJSONOnlyModelTests {
    /// The tiny LLaMA with tokenizer.json only: run gives transformers' greedy continuation (its prompt tokenizes
    /// differently with sentencepiece), verify runs the forward pass.
    @Test func runGivesTransformersGreedyContinuation() throws {
        let f = try Fx.json("tokenizers/expected/tiny-llama-json.greedy.json")
        let folder = Fx.path("tiny-llama-json")
        #expect(Sys.status(Fx.path("tiny-llama-json/tokenizer.model")) == nil)
        let m = try ModelFolder(folder)
        let tok = try #require(try Tokenizer.load(for: m))
        #expect(tok.kind == .tokenizerJSON)
        let prompt = f["prompt"]!.stringValue!
        #expect(tok.encode(prompt, addSpecialTokens: true) == TokFx.ints(f["input_ids"]))
        #expect(tok.encode(prompt, addSpecialTokens: true) != TokFx.ints(f["sentencepiece_ids"]))
        let g = Generator(model: LlamaModel(weights: try LlamaWeights(model: m), maxTokens: 64), tokenizer: tok)
        let r = try g.run(prompt: prompt, maxNewTokens: 16)
        #expect(r.generated == TokFx.ints(f["greedy_ids"]))
        #expect(r.text == f["greedy_text"]!.stringValue!)
        let cli = try CLI.run(["run", folder, "--prompt", prompt, "-n", "16"])
        #expect(cli.status == 0 && cli.stdout.hasPrefix(prompt) && cli.stdout.contains(f["greedy_text"]!.stringValue!), "\(cli.stdout)\(cli.stderr)")
    }

    @Test func verifyRunsTheForwardPass() throws {
        let r = try CLI.run(["verify", Fx.path("tiny-llama-json"), "--json"])
        #expect(r.status == 0, "\(r.stdout)\(r.stderr)")
        let j = try JSONParser.parse(r.stdout)
        let checks = j["checks"]?.arrayValue ?? []
        let inference = checks.filter { $0["group"]?.stringValue == "inference" }
        #expect(inference.contains { $0["check"]?.stringValue == "perplexity (built-in text)" && $0["status"]?.stringValue == "PASS" })
        #expect(inference.contains { $0["check"]?.stringValue == "greedy continuation" && $0["status"]?.stringValue == "PASS" })
        #expect(!checks.contains { $0["status"]?.stringValue == "SKIP" || $0["status"]?.stringValue == "FAIL" })
    }

    /// A tokenizer file that does not load is a failed check, not "no tokenizer" (and not OK).
    @Test func aBrokenTokenizerFailsVerify() throws {
        let tmp = TempDir()
        try FileManager.default.copyItem(atPath: Fx.path("tiny-llama-json"), toPath: tmp.sub("m"))
        try tmp.write("m/tokenizer.json", "{\"model\": ")
        let r = try CLI.run(["verify", tmp.sub("m")])
        #expect(r.status == 1 && r.stdout.contains("tokenizer loads"), "\(r.stdout)")
    }
}

@Suite struct TokenizerSweepTests {
    /// Truncated and byte-flipped tokenizer files of every kind: loading ends in a named error or a tokenizer that
    /// encodes and decodes (a crash would kill the test process).
    @Test(arguments: ["tokenizers/spm-userdefined.model", "tokenizers/spm-legacy.tokenizer.json",
                      "tokenizers/llama3-flags.tokenizer.json", "tokenizers/llama3.gguf", "tokenizers/llama-spm.gguf"])
    func mutatedTokenizerFilesEndInANamedErrorOrATokenizer(file: String) throws {
        let original = try Fx.bytes(Fx.path(file))
        let tmp = TempDir()
        let name = tmp.sub(Path.baseName(file))
        let samples = ["Hello world", " <s> e\u{301} \u{212A} 12345 <|eot_id|> 中文 🤖", "", "  \n\t"]
        var s: UInt64 = 0x70CE
        var mutations: [[UInt8]] = []
        for k in 0..<24 { mutations.append(Array(original.prefix(original.count * k / 24))) }
        for _ in 0..<48 {
            s ^= s << 13; s ^= s >> 7; s ^= s << 17
            var c = original
            let i = Int(s % UInt64(c.count))
            c[i] ^= [0xFF, 0x80, 0x01, 0x20][Int(s >> 60) & 3]
            mutations.append(c)
        }
        var errors = 0, loaded = 0
        for m in mutations {
            try Data(m).write(to: URL(fileURLWithPath: name))
            do {
                let t = try Tokenizer(path: name)
                for x in samples { _ = t.decode(t.encode(x, addSpecialTokens: true), skipSpecialTokens: false) }
                _ = t.decode(Array(0..<min(t.vocabularySize, 300)))
                loaded += 1
            } catch is CkptError {
                errors += 1
            }
        }
        #expect(errors + loaded == mutations.count && errors > 0)
    }

    /// A repo id resolved from the Hugging Face cache (HF_HUB_CACHE), as for every other command.
    @Test func aRepoIDFromTheCache() throws {
        let tmp = TempDir()
        let snap = tmp.sub("models--org--tiny/snapshots/0123abcd")
        try FileManager.default.createDirectory(atPath: snap, withIntermediateDirectories: true)
        try FileManager.default.createDirectory(atPath: tmp.sub("models--org--tiny/refs"), withIntermediateDirectories: true)
        try tmp.write("models--org--tiny/refs/main", "0123abcd")
        try FileManager.default.copyItem(atPath: Fx.path("tiny-llama/tokenizer.json"), toPath: snap + "/tokenizer.json")
        let r = try CLI.run(["tokenize", "org/tiny", "--text", "Hello world"], env: ["HF_HUB_CACHE": tmp.path])
        let want = try TokenizeCommandTests.expected("tiny-llama-json", "Hello world").special
        #expect(r.status == 0 && TokenizeCommandTests.ids(r.stdout) == want, "\(r.stdout)\(r.stderr)")
    }
}
