/// The handful of Python `re` calls peft makes to pick modules, on Swift's `Regex` (same backtracking semantics for
/// the syntax adapter configs use: groups, alternation, classes, lazy and greedy quantifiers, anchors).
/// Module names are ASCII without newlines, so Python's `$`-before-a-final-newline and Swift's grapheme matching
/// make no difference. Compiled patterns are cached per instance.
final class PythonRegex {
    private var cache: [String: Regex<AnyRegexOutput>] = [:]

    /// Why `pattern` does not compile, or nil.
    static func compileError(_ pattern: String) -> String? {
        do {
            _ = try Regex(pattern)
            return nil
        } catch {
            return "\(error)"
        }
    }

    private func compiled(_ pattern: String) -> Regex<AnyRegexOutput>? {
        if let r = cache[pattern] { return r }
        do {
            let r = try Regex(pattern)
            cache[pattern] = r
            return r
        } catch {
            return nil  // unreachable for patterns from a config: LoRAConfig refuses those that do not compile
        }
    }

    /// `re.fullmatch(pattern, s)`.
    func fullMatch(_ pattern: String, _ s: String) -> Bool {
        guard let r = compiled(pattern) else { return false }
        return s.wholeMatch(of: r) != nil
    }

    /// `re.match(pattern, s)` (anchored at the start only); the named group `idx` when asked for.
    func prefixMatch(_ pattern: String, _ s: String) -> Bool {
        guard let r = compiled(pattern) else { return false }
        return s.prefixMatch(of: r) != nil
    }

    func prefixMatchGroup(_ pattern: String, _ s: String, group: String) -> Substring? {
        guard let r = compiled(pattern), let m = s.prefixMatch(of: r) else { return nil }
        return m.output[group]?.substring
    }

    /// peft's `get_pattern_key` test: `re.match(rf"(.*\.)?({key})$", name)`.
    func matchesSuffixPattern(_ key: String, _ name: String) -> Bool {
        fullMatch("(.*\\.)?(" + key + ")", name)
    }
}
