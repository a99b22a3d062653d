/// Reading a Hugging Face `tokenizer.json` (tokenizers 0.23) into an `HFTokenizer`. Supported: the pipelines of
/// LLaMA-family files — SentencePiece-converted (legacy Prepend+Replace normalizer, or Metaspace pre-tokenizer;
/// byte fallback) and byte-level BPE (LLaMA-3 / Qwen2 Split pattern + ByteLevel, NFC normalizer). Every other
/// component, option or pattern is refused with a named `TokenizerError`.
extension HFTokenizer {
    static let maxFileSize = Limits.tokenizerJSON
    /// Real vocabularies stay below 300k ids; a larger id is a broken file, not a reason to allocate gigabytes.
    static let maxTokenID = 1 << 24

    init(tokenizerJSON path: String) throws {
        let json = try JSONFile.read(path, limit: HFTokenizer.maxFileSize) { TokenizerError.malformed(file: path, detail: $0) }
        try self.init(json: json, path: path)
    }

    init(json j: JSON, path: String) throws(TokenizerError) {
        self.path = path
        func fail(_ d: String) -> TokenizerError { .malformed(file: path, detail: d) }
        guard j.objectMembers != nil else { throw fail("the top level is not a JSON object") }
        for key in ["truncation", "padding"] {
            if let v = j[key], !v.isNull { throw .unsupportedOption(file: path, stage: key, detail: "a non-null \(key)") }
        }

        // pre-tokenizer first: it decides whether vocabulary keys are byte-level strings
        preTokenizers = try HFTokenizer.preTokenizers(j["pre_tokenizer"], path)
        byteLevel = preTokenizers.contains { if case .byteLevel = $0 { true } else { false } }

        // model
        guard let m = j["model"], m.objectMembers != nil else { throw fail("no \"model\"") }
        let type = m["type"]?.stringValue ?? (m["merges"] != nil ? "BPE" : "?")
        guard type == "BPE" else { throw .unsupportedComponent(file: path, stage: "model", type: type) }
        if let d = m["dropout"], !d.isNull {
            guard let v = d.doubleValue else { throw fail("model.dropout is not a number") }
            if v != 0 { throw .dropout(file: path, value: JSONWriter.compact(d)) }
        }
        for key in ["continuing_subword_prefix", "end_of_word_suffix"] {
            if let v = m[key], !v.isNull, v.stringValue != "" {
                throw .unsupportedOption(file: path, stage: "model", detail: "\(key) \(JSONWriter.compact(v))")
            }
        }
        func flag(_ v: JSON?, _ name: String, _ def: Bool) throws(TokenizerError) -> Bool {
            guard let v, !v.isNull else { return def }
            guard let b = v.boolValue else { throw fail("\(name) is not a boolean") }
            return b
        }
        byteFallback = try flag(m["byte_fallback"], "model.byte_fallback", false)
        fuseUnk = try flag(m["fuse_unk"], "model.fuse_unk", false)
        ignoreMerges = try flag(m["ignore_merges"], "model.ignore_merges", false)
        guard let vocabMembers = m["vocab"]?.objectMembers else { throw fail("model.vocab is not an object") }
        var vocab = ByteMap(capacity: vocabMembers.count)
        var maxID = -1
        var reverse: [(Int, [UInt8])] = []
        reverse.reserveCapacity(vocabMembers.count)
        for (key, v) in vocabMembers {
            guard let id = v.unsignedValue, id < HFTokenizer.maxTokenID else {
                throw fail("model.vocab[\(JSONWriter.compact(.string(key)))] is not a token id below \(HFTokenizer.maxTokenID)")
            }
            let k = Array(key.utf8)
            vocab.set(k, Int32(id))
            reverse.append((id, k))
            maxID = max(maxID, id)
        }
        self.vocab = vocab
        let modelSize = vocab.count
        if let u = m["unk_token"], !u.isNull {
            guard let s = u.stringValue else { throw fail("model.unk_token is not a string") }
            let id = vocab.get(Array(s.utf8))
            guard id >= 0 else { throw fail("model.unk_token \(JSONWriter.compact(u)) is not in the vocabulary") }
            unkID = id
        }
        for b in 0..<256 {
            let hex = String(b, radix: 16, uppercase: true)
            byteFallbackIDs[b] = vocab.get(Array("<0x\(b < 16 ? "0" : "")\(hex)>".utf8))
        }
        byteChar = (0..<256).map { ByteLevel.encode(UInt8($0)) }
        if byteLevel {
            var raw = ByteMap(capacity: vocabMembers.count)
            vocab.forEach { k, id in if let r = ByteLevel.decode(Array(k)) { raw.set(r, id) } }
            rawVocab = raw
            for b in 0..<256 { byteSymbol[b] = vocab.get(byteChar[b]) }
        }

        // merges: rank = index; "a b" strings (lines starting "#version" skipped) or ["a", "b"] pairs
        guard let mergeList = m["merges"]?.arrayValue else { throw fail("model.merges is not an array") }
        var table = PairTable(capacity: mergeList.count)
        var rank: UInt32 = 0
        var joinsAcrossSpace = false
        for item in mergeList {
            let a: [UInt8], b: [UInt8]
            if let s = item.stringValue {
                if s.hasPrefix("#version") { continue }
                let parts = s.utf8.split(separator: 0x20, omittingEmptySubsequences: false)
                guard parts.count == 2 else { throw fail("merge \(rank + 1) \(JSONWriter.compact(item)) is not two tokens") }
                a = Array(parts[0]); b = Array(parts[1])
            } else if let pair = item.arrayValue, pair.count == 2, let x = pair[0].stringValue, let y = pair[1].stringValue {
                a = Array(x.utf8); b = Array(y.utf8)
            } else {
                throw fail("merge \(rank + 1) is neither \"a b\" nor [\"a\", \"b\"]")
            }
            let ia = vocab.get(a), ib = vocab.get(b), im = vocab.get(a + b)
            guard ia >= 0, ib >= 0, im >= 0 else {
                throw fail("merge \(rank + 1) \(JSONWriter.compact(item)): a token is not in the vocabulary")
            }
            table.set(ia, ib, rank: rank, merged: im)
            if !joinsAcrossSpace && SpaceSegments.joinsAcrossSpace(a + b) { joinsAcrossSpace = true }
            rank += 1
        }
        merges = table
        spaceSplit = !byteLevel && !joinsAcrossSpace && vocab.get(SpaceSegments.space) >= 0

        // added tokens: ids assigned as tokenizers does on load (the "id" in the file is only checked)
        var addedList: [AddedToken] = []
        var byContent = ByteMap()
        var specialContent = ByteMap()
        let entries = j["added_tokens"]?.arrayValue ?? []
        var parsed: [AddedToken] = []
        for e in entries {
            guard let content = e["content"]?.stringValue else { throw fail("an added token has no content") }
            let special = try flag(e["special"], "added_tokens.special", false)
            parsed.append(AddedToken(content: Array(content.utf8), id: -1, special: special,
                                     lstrip: try flag(e["lstrip"], "added_tokens.lstrip", false),
                                     rstrip: try flag(e["rstrip"], "added_tokens.rstrip", false),
                                     singleWord: try flag(e["single_word"], "added_tokens.single_word", false),
                                     normalized: try flag(e["normalized"], "added_tokens.normalized", !special)))
        }
        for t in parsed where t.special && !t.content.isEmpty { specialContent.set(t.content, 1) }
        var maxAdded: Int32 = -1
        for var t in parsed {
            guard !t.content.isEmpty else { continue }
            if addedList.contains(where: { $0.content == t.content && $0.special == t.special && $0.lstrip == t.lstrip
                && $0.rstrip == t.rstrip && $0.singleWord == t.singleWord && $0.normalized == t.normalized }) { continue }
            var id = byContent.get(t.content)
            if id < 0 { id = vocab.get(t.content) }
            if id < 0 {
                // next id: the vocabulary size, or one past the largest added id once that reaches it
                if byContent.count == 0 {
                    id = Int32(modelSize)
                } else {
                    id = maxAdded >= Int32(modelSize) || modelSize == 0 ? maxAdded + 1 : Int32(modelSize)
                }
            }
            guard Int(id) < HFTokenizer.maxTokenID else { throw fail("added token ids run past \(HFTokenizer.maxTokenID)") }
            t.id = id
            maxAdded = max(maxAdded, id)
            byContent.set(t.content, id)
            if let k = addedList.firstIndex(where: { $0.content == t.content }) { addedList[k] = t } else { addedList.append(t) }
        }
        added = addedList

        // normalizer, then the tries (normalized tokens are matched in their normalized form)
        normalizers = try HFTokenizer.normalizers(j["normalizer"], path)
        for (k, t) in added.enumerated() {
            if t.normalized && !normalizers.isEmpty {
                normTrie.insert(normalize(t.content), value: Int32(k))
            } else if t.normalized {
                normTrie.insert(t.content, value: Int32(k))
            } else {
                rawTrie.insert(t.content, value: Int32(k))
            }
        }

        // id → token
        var size = maxID + 1
        for t in added { size = max(size, Int(t.id) + 1) }
        var table2 = [[UInt8]?](repeating: nil, count: size)
        for (id, k) in reverse { table2[id] = k }
        for t in added { table2[Int(t.id)] = t.content }
        idToToken = table2
        isSpecialID = table2.map { $0.map { specialContent.get($0) >= 0 } ?? false }

        template = try HFTokenizer.template(j["post_processor"], path)
        decoders = try HFTokenizer.decoders(j["decoder"], path)
    }

    // MARK: components

    private static func type(_ v: JSON, _ path: String, _ stage: String) throws(TokenizerError) -> String {
        guard let t = v["type"]?.stringValue else { throw .malformed(file: path, detail: "\(stage) has no type") }
        return t
    }

    private static func string(_ v: JSON?, _ path: String, _ what: String) throws(TokenizerError) -> String {
        guard let s = v?.stringValue else { throw .malformed(file: path, detail: "\(what) is not a string") }
        return s
    }

    /// `{"String": s}` patterns only (a Regex pattern is refused).
    private static func stringPattern(_ v: JSON?, _ path: String, _ stage: String) throws(TokenizerError) -> String {
        if let s = v?["String"]?.stringValue { return s }
        if let r = v?["Regex"]?.stringValue { throw .unsupportedOption(file: path, stage: stage, detail: "a Regex pattern \(JSONWriter.compact(.string(r)))") }
        throw .malformed(file: path, detail: "\(stage).pattern is neither {\"String\"} nor {\"Regex\"}")
    }

    static func normalizers(_ v: JSON?, _ path: String) throws(TokenizerError) -> [Normalizer] {
        guard let v, !v.isNull else { return [] }
        let t = try type(v, path, "normalizer")
        switch t {
        case "Sequence":
            guard let list = v["normalizers"]?.arrayValue else { throw .malformed(file: path, detail: "normalizer Sequence without normalizers") }
            var out: [Normalizer] = []
            for n in list { out += try normalizers(n, path) }
            return out
        case "Prepend": return [.prepend(Array(try string(v["prepend"], path, "Prepend.prepend").utf8))]
        case "Replace":
            let p = try stringPattern(v["pattern"], path, "normalizer Replace")
            return [.replace(Array(p.utf8), Array(try string(v["content"], path, "Replace.content").utf8))]
        case "NFC": return [.nfc]
        default: throw .unsupportedComponent(file: path, stage: "normalizer", type: t)
        }
    }

    static func preTokenizers(_ v: JSON?, _ path: String) throws(TokenizerError) -> [PreTokenizer] {
        guard let v, !v.isNull else { return [] }
        var out: [PreTokenizer] = []
        func add(_ p: JSON) throws(TokenizerError) {
            let t = try type(p, path, "pre_tokenizer")
            switch t {
            case "Sequence":
                guard let list = p["pretokenizers"]?.arrayValue else { throw .malformed(file: path, detail: "pre_tokenizer Sequence without pretokenizers") }
                for x in list { try add(x) }
            case "Metaspace":
                let rep = try string(p["replacement"], path, "Metaspace.replacement")
                guard rep.unicodeScalars.count == 1 else { throw .malformed(file: path, detail: "Metaspace.replacement is not one character") }
                var scheme = PrependScheme.always
                if let s = p["prepend_scheme"]?.stringValue {
                    switch s {
                    case "always": scheme = .always
                    case "first": scheme = .first
                    case "never": scheme = .never
                    default: throw .malformed(file: path, detail: "Metaspace.prepend_scheme \"\(s)\"")
                    }
                } else if let a = p["add_prefix_space"]?.boolValue {
                    scheme = a ? .always : .never
                }
                let split = p["split"]?.boolValue ?? true
                out.append(.metaspace(replacement: Array(rep.utf8), scheme: scheme, split: split))
            case "Split":
                guard let pat = p["pattern"] else { throw .malformed(file: path, detail: "Split without a pattern") }
                guard let regex = pat["Regex"]?.stringValue else {
                    throw .unsupportedOption(file: path, stage: "pre_tokenizer Split", detail: "a String pattern \(JSONWriter.compact(pat))")
                }
                guard let kind = SplitScanner.pattern(regex) else { throw .unknownSplitPattern(file: path, pattern: regex) }
                let behavior = p["behavior"]?.stringValue ?? "?"
                let invert = p["invert"]?.boolValue ?? false
                // The pattern matches every character, so Isolated and Removed+invert both keep exactly the matches.
                guard (behavior == "Isolated" && !invert) || (behavior == "Removed" && invert) else {
                    throw .unsupportedOption(file: path, stage: "pre_tokenizer Split", detail: "behavior \(behavior) with invert \(invert)")
                }
                out.append(.split(SplitScanner(kind)))
            case "ByteLevel":
                if p["add_prefix_space"]?.boolValue ?? true {
                    throw .unsupportedOption(file: path, stage: "pre_tokenizer ByteLevel", detail: "add_prefix_space true")
                }
                if p["use_regex"]?.boolValue ?? true {
                    throw .unsupportedOption(file: path, stage: "pre_tokenizer ByteLevel", detail: "use_regex true (the GPT-2 pattern)")
                }
                out.append(.byteLevel)
            default:
                throw .unsupportedComponent(file: path, stage: "pre_tokenizer", type: t)
            }
        }
        try add(v)
        // ByteLevel last, and not mixed with Metaspace
        let hasMeta = out.contains { if case .metaspace = $0 { true } else { false } }
        if let k = out.firstIndex(where: { if case .byteLevel = $0 { true } else { false } }) {
            if k != out.count - 1 || hasMeta {
                throw .unsupportedOption(file: path, stage: "pre_tokenizer", detail: "ByteLevel before other steps or with Metaspace")
            }
        }
        return out
    }

    static func template(_ v: JSON?, _ path: String) throws(TokenizerError) -> [TemplateItem]? {
        guard let v, !v.isNull else { return nil }
        let t = try type(v, path, "post_processor")
        switch t {
        case "ByteLevel": return nil
        case "Sequence":
            guard let list = v["processors"]?.arrayValue else { throw .malformed(file: path, detail: "post_processor Sequence without processors") }
            var found: [TemplateItem]?
            for p in list {
                if let items = try template(p, path) {
                    if found != nil { throw .unsupportedOption(file: path, stage: "post_processor", detail: "two templates") }
                    found = items
                }
            }
            return found
        case "TemplateProcessing":
            guard let single = v["single"]?.arrayValue else { throw .malformed(file: path, detail: "TemplateProcessing without single") }
            let specials = v["special_tokens"]
            var items: [TemplateItem] = []
            for s in single {
                if let st = s["SpecialToken"] {
                    let name = try string(st["id"], path, "TemplateProcessing SpecialToken.id")
                    guard let ids = specials?[name]?["ids"]?.arrayValue else {
                        throw .malformed(file: path, detail: "TemplateProcessing: special token \(JSONWriter.compact(.string(name))) has no ids")
                    }
                    var list: [Int32] = []
                    for x in ids {
                        guard let i = x.unsignedValue, i < Int(Int32.max) else { throw .malformed(file: path, detail: "TemplateProcessing: bad id") }
                        list.append(Int32(i))
                    }
                    items.append(.special(list))
                } else if let sq = s["Sequence"] {
                    guard sq["id"]?.stringValue == "A" else { throw .malformed(file: path, detail: "TemplateProcessing single uses sequence B") }
                    items.append(.sequence)
                } else {
                    throw .malformed(file: path, detail: "TemplateProcessing: unknown template piece")
                }
            }
            return items
        default:
            throw .unsupportedComponent(file: path, stage: "post_processor", type: t)
        }
    }

    static func decoders(_ v: JSON?, _ path: String) throws(TokenizerError) -> [Decoder]? {
        guard let v, !v.isNull else { return nil }
        let t = try type(v, path, "decoder")
        switch t {
        case "Sequence":
            guard let list = v["decoders"]?.arrayValue else { throw .malformed(file: path, detail: "decoder Sequence without decoders") }
            var out: [Decoder] = []
            for d in list { out += try decoders(d, path) ?? [] }
            return out
        case "Replace":
            let p = try stringPattern(v["pattern"], path, "decoder Replace")
            return [.replace(Array(p.utf8), Array(try string(v["content"], path, "Replace.content").utf8))]
        case "ByteFallback": return [.byteFallback]
        case "Fuse": return [.fuse]
        case "Strip":
            let c = try string(v["content"], path, "Strip.content")
            guard c.unicodeScalars.count == 1, let start = v["start"]?.unsignedValue, let stop = v["stop"]?.unsignedValue else {
                throw .malformed(file: path, detail: "Strip needs one content character, start and stop")
            }
            return [.strip(c.unicodeScalars.first!.value, start, stop)]
        case "ByteLevel": return [.byteLevel]
        case "Metaspace":
            let rep = try string(v["replacement"], path, "Metaspace.replacement")
            guard rep.unicodeScalars.count == 1 else { throw .malformed(file: path, detail: "Metaspace.replacement is not one character") }
            var scheme = PrependScheme.always
            if let s = v["prepend_scheme"]?.stringValue {
                scheme = s == "never" ? .never : s == "first" ? .first : .always
            } else if let a = v["add_prefix_space"]?.boolValue {
                scheme = a ? .always : .never
            }
            return [.metaspace(replacement: rep.unicodeScalars.first!.value, scheme: scheme)]
        default:
            throw .unsupportedComponent(file: path, stage: "decoder", type: t)
        }
    }
}
