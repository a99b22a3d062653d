/// `general.*` as gguf-py's `Metadata` (0c1e57098) fills it for a folder without a model card: the sampling
/// defaults from generation_config.json, then the name, version, organization, fine-tune, base name and size label
/// parsed from config.json's `_name_or_path` (when it is a hub id) and the folder name
/// (`Metadata.get_model_id_components`, `id_to_title`). A model card (README.md front matter: license, tags, base
/// models, languages) is not read — its keys are the one part of `general.*` ckpt does not reproduce.
enum GGUFGeneralMetadata {
    struct Components {
        var name: String?, organization: String?, basename: String?, finetune: String?, version: String?, sizeLabel: String?
    }

    /// gguf-py `Metadata.id_to_title`: words title-cased unless they are versions, numbers or not all lower case.
    static func idToTitle(_ s: String) -> String {
        s.trimmingWhitespace().replacing("-", with: " ").split(whereSeparator: { $0.isWhitespace }).map { w -> String in
            let word = String(w)
            let isVersionOrNumber = word.wholeMatch(of: /v\d+(?:\.\d+)*/) != nil || word.first?.isNumber == true && word.first?.isASCII == true
            return isLower(word) && !isVersionOrNumber ? title(word) : word
        }.joined(separator: " ")
    }

    /// Python `str.islower()`: at least one cased character and no upper-case one.
    static func isLower(_ s: String) -> Bool {
        var cased = false
        for c in s.unicodeScalars {
            guard c.properties.isCased else { continue }
            if !c.properties.isLowercase { return false }
            cased = true
        }
        return cased
    }

    /// Python `str.title()`: a cased character after an uncased one starts a word ("llama3b" → "Llama3B").
    static func title(_ s: String) -> String {
        var out = ""
        var previousCased = false
        for c in s.unicodeScalars {
            let cased = c.properties.isCased
            if cased { out += previousCased ? c.properties.lowercaseMapping : c.properties.titlecaseMapping } else { out.unicodeScalars.append(c) }
            previousCased = cased
        }
        return out
    }

    /// `Metadata.get_model_id_components`.
    static func components(_ modelID: String, totalParameters: Int) -> Components {
        if modelID.contains(" ") { return Components(name: modelID) }
        var org: String?, full = modelID
        if let slash = modelID.firstIndex(of: "/") {
            org = String(modelID[..<slash])
            full = String(modelID[modelID.index(after: slash)...])
        }
        if let o = org, o.hasPrefix(".") { org = nil }
        var parts = full.split(separator: "-", omittingEmptySubsequences: true).map(String.init)
        var types = [Set<String>](repeating: [], count: parts.count)
        for i in parts.indices {
            let part = parts[i]
            if part.wholeMatch(of: /(?i)(v|iter)?\d+([.]\d+)*/) != nil {
                types[i].insert("version")
            } else if part.wholeMatch(of: /(?i)i?q\d(_\w)*|b?fp?(16|32)/) != nil {
                types[i].insert("type")
                parts[i] = part.uppercased()
            } else if i > 0, part.wholeMatch(of: /(?i)(([A]|\d+[x])?\d+([._]\d+)?[KMBT][\d]?|small|mini|medium|large|x?xl)/) != nil {
                var p = Array(part.replacing("_", with: "."))
                if let last = p.last, last.isASCII && last.isNumber, p.count >= 2 {  // bloom-7b1 → 7.1b
                    p = Array(p.dropLast(2)) + ["."] + [p[p.count - 1], p[p.count - 2]]
                }
                if p.count > 1, p[p.count - 2].isASCII && p[p.count - 2].isNumber, "kmbt".contains(p[p.count - 1]) {
                    p[p.count - 1] = Character(p[p.count - 1].uppercased())
                }
                if totalParameters != 0, let mantissa = Double(String(p.dropLast())) {
                    let exponent = " KMBT".firstIndex(of: p[p.count - 1]).map { " KMBT".distance(from: " KMBT".startIndex, to: $0) } ?? -1
                    let labelParameters = mantissa * pow1000(exponent)
                    let total = Double(totalParameters)
                    if totalParameters > 0 && abs(labelParameters - total) > Double(7 * totalParameters / 8) {
                        types[i].insert("finetune")  // likely a context length
                        p[p.count - 1] = Character(p[p.count - 1].lowercased())
                    }
                }
                if types[i].isEmpty { types[i].insert("size_label") }
                parts[i] = String(p)
            } else if i > 0, part.wholeMatch(of: /(?i)chat|instruct|vision|lora/) != nil {
                types[i].insert("finetune")
            }
        }
        // Word-based size labels go when a number-based one is present.
        if zip(parts, types).contains(where: { $0.1.contains("size_label") && $0.0.contains(where: { $0.isASCII && $0.isNumber }) }) {
            for i in parts.indices where types[i].contains("size_label") && parts[i].allSatisfy(\.isLetter) {
                types[i].remove("size_label")
            }
        }
        var atStart = true
        for i in parts.indices {
            if atStart && ((types[i].isEmpty && parts[i].first?.isLetter == true) || types[i].contains("version")) {
                types[i].insert("basename")
            } else {
                atStart = false
                if types[i].isEmpty { types[i].insert("finetune") }
            }
        }
        for i in parts.indices.reversed() {
            if types[i].contains("basename") && types[i].count > 1 { types[i].remove("basename") } else { break }
        }
        func join(_ kind: String, excluding: String? = nil) -> String? {
            var seen: [String] = []
            for (p, t) in zip(parts, types) where t.contains(kind) && !(excluding.map { t.contains($0) } ?? false) {
                if kind == "size_label" && seen.contains(where: { $0.unicodeScalars.elementsEqual(p.unicodeScalars) }) { continue }
                seen.append(p)
            }
            return seen.isEmpty ? nil : seen.joined(separator: "-")
        }
        var c = Components(name: full, organization: org, basename: join("basename"), finetune: join("finetune"),
                           version: join("version", excluding: "basename"), sizeLabel: join("size_label"))
        if c.sizeLabel == nil && c.finetune == nil && c.version == nil { c.basename = nil }
        return c
    }

    static func pow1000(_ e: Int) -> Double {
        e >= 0 ? (0..<e).reduce(1.0) { r, _ in r * 1000 } : 1.0 / 1000
    }

    /// The `general.*` keys before the architecture's, in gguf-py's order. `computedSizeLabel` is used when the
    /// names give none.
    static func keys(folder: String, config: JSON?, totalParameters: Int, computedSizeLabel: String) throws -> [(String, GGUFValue)] {
        var kv: [(String, GGUFValue)] = []
        let genPath = Path.join(folder, "generation_config.json")
        if Sys.status(genPath)?.isRegular == true {
            // gguf-py ignores a generation_config.json it cannot parse; ckpt reads it with its own named error.
            let g = try LlamaConfig.readJSON(genPath)
            if let s = g["sequence"]?.stringValue { kv.append(("general.sampling.sequence", .string(s))) }
            func int(_ key: String, _ name: String) {
                if let v = g[key], case .number = v, let i = v.intValue { kv.append(("general.sampling." + name, .int32(Int32(truncatingIfNeeded: i)))) }
            }
            func float(_ key: String, _ name: String, or other: String? = nil) {
                if let v = g[key] ?? other.flatMap({ g[$0] }), let d = v.doubleValue { kv.append(("general.sampling." + name, .float32(Float(d)))) }
            }
            int("top_k", "top_k")
            float("top_p", "top_p")
            float("min_p", "min_p")
            float("xtc_probability", "xtc_probability")
            float("xtc_threshold", "xtc_threshold")
            float("temperature", "temp")
            int("penalty_last_n", "penalty_last_n")
            float("penalty_repeat", "penalty_repeat", or: "repetition_penalty")
            int("mirostat", "mirostat")
            float("mirostat_tau", "mirostat_tau")
            float("mirostat_eta", "mirostat_eta")
        }
        var m = Components()
        func merge(_ c: Components) {
            if m.name == nil, let n = c.name { m.name = idToTitle(n) }
            if m.organization == nil, let o = c.organization { m.organization = idToTitle(o) }
            m.basename = m.basename ?? c.basename
            m.finetune = m.finetune ?? c.finetune
            m.version = m.version ?? c.version
            m.sizeLabel = m.sizeLabel ?? c.sizeLabel
        }
        if let id = config?["_name_or_path"]?.stringValue, id.filter({ $0 == "/" }).count <= 1 {
            merge(components(id, totalParameters: totalParameters))
        }
        var dirName = Path.baseName(folder)
        if dirName == "." || dirName.isEmpty, let real = Sys.realPath(folder) { dirName = Path.baseName(real) }
        merge(components(dirName, totalParameters: totalParameters))
        kv.append(("general.name", .string(m.name ?? dirName)))
        if let v = m.version { kv.append(("general.version", .string(v))) }
        if let o = m.organization { kv.append(("general.organization", .string(o))) }
        if let f = m.finetune { kv.append(("general.finetune", .string(f))) }
        if let b = m.basename { kv.append(("general.basename", .string(b))) }
        kv.append(("general.size_label", .string(m.sizeLabel ?? computedSizeLabel)))
        return kv
    }
}

extension String {
    func trimmingWhitespace() -> String {
        String(drop(while: { $0.isWhitespace }).reversed().drop(while: { $0.isWhitespace }).reversed())
    }
}
