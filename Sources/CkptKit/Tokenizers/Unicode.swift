/// Unicode data as the reference libraries see it, from Swift's own tables (Unicode 17) cut back to their versions:
/// - Oniguruma in tokenizers 0.23.3 (the LLaMA-3 / Qwen2 split pattern's `\p{L}`, `\p{N}`, `\s`): Unicode 16.0 —
///   scalars new in 17.0 count as "other";
/// - tokenizers' NFC normalizer (crate unicode-normalization-alignments): Unicode 9.0 — scalars assigned later are
///   left alone (no decomposition, combining class 0);
/// - regex-syntax's `\w` (added tokens' `single_word`) and Rust's `char::is_whitespace` (lstrip/rstrip).
/// Fixtures/tokenizers/expected/unicode.json holds the classes measured from the references; a test compares every
/// code point.
enum UnicodeData {
    /// Scanner classes.
    static let other: UInt8 = 0, letter: UInt8 = 1, number: UInt8 = 2, space: UInt8 = 3, newline: UInt8 = 4

    /// Class of every code point (surrogates: other), built once on first use (~1.1 MB).
    static let classes: [UInt8] = {
        var t = [UInt8](repeating: other, count: 0x110000)
        for v in 0..<0x110000 {
            guard let s = Unicode.Scalar(UInt32(v)) else { continue }
            t[v] = classify(s)
        }
        return t
    }()

    static func classify(_ s: Unicode.Scalar) -> UInt8 {
        if s == "\n" || s == "\r" { return newline }
        let p = s.properties
        if p.isWhitespace { return space }
        guard let age = p.age, age.major <= 16 else { return other }
        switch p.generalCategory {
        case .uppercaseLetter, .lowercaseLetter, .titlecaseLetter, .modifierLetter, .otherLetter: return letter
        case .decimalNumber, .letterNumber, .otherNumber: return number
        default: return other
        }
    }

    /// regex-syntax `\w`: Alphabetic, marks, decimal numbers, connector punctuation, Join_Control.
    static func isWordCharacter(_ v: UInt32) -> Bool {
        guard let s = Unicode.Scalar(v) else { return false }
        let p = s.properties
        guard let age = p.age, age.major <= 16 else { return false }
        if p.isAlphabetic || p.isJoinControl { return true }
        switch p.generalCategory {
        case .nonspacingMark, .spacingMark, .enclosingMark, .decimalNumber, .connectorPunctuation: return true
        default: return false
        }
    }

    /// Rust `char::is_whitespace` (the White_Space property).
    static func isWhitespace(_ v: UInt32) -> Bool { Unicode.Scalar(v)?.properties.isWhitespace ?? false }

    /// NFC as tokenizers computes it (Unicode 9.0 data): text is cut before and after every scalar assigned after
    /// 9.0 (for the old tables an unassigned code point: a starter that neither decomposes nor composes) and each
    /// segment normalised with Swift's NFC — exact by Unicode's normalization stability policy.
    static func nfc(_ bytes: [UInt8]) -> [UInt8] {
        // Quick check: below U+0300 every scalar is a starter that NFC keeps as it is.
        var quick = true
        for b in bytes where b >= 0xCC { quick = false; break }
        if quick { return bytes }
        var out: [UInt8] = []
        out.reserveCapacity(bytes.count)
        var segStart = 0
        var i = 0
        func flush(_ end: Int) {
            guard end > segStart else { return }
            let seg = String(decoding: bytes[segStart..<end], as: UTF8.self)
            out += seg._nfcCodeUnits
        }
        while i < bytes.count {
            let (v, len) = UTF8Scalars.decode(bytes, i)
            if v >= 0x0370, let s = Unicode.Scalar(v), let age = s.properties.age,
               age.major > 9 || (age.major == 9 && age.minor > 0) {
                flush(i)
                out += bytes[i..<(i + len)]
                segStart = i + len
            }
            i += len
        }
        flush(bytes.count)
        return out
    }
}

/// UTF-8 decoding on valid input (Swift strings are valid UTF-8).
enum UTF8Scalars {
    /// Length of the scalar starting with lead byte `b`.
    @inline(__always) static func length(_ b: UInt8) -> Int {
        b < 0x80 ? 1 : b < 0xE0 ? 2 : b < 0xF0 ? 3 : 4
    }

    @inline(__always) static func decode(_ p: UnsafeBufferPointer<UInt8>, _ i: Int) -> (UInt32, Int) {
        let b0 = UInt32(p[i])
        if b0 < 0x80 { return (b0, 1) }
        if b0 < 0xE0 { return ((b0 & 0x1F) << 6 | UInt32(p[i + 1] & 0x3F), 2) }
        if b0 < 0xF0 { return ((b0 & 0x0F) << 12 | UInt32(p[i + 1] & 0x3F) << 6 | UInt32(p[i + 2] & 0x3F), 3) }
        return ((b0 & 0x07) << 18 | UInt32(p[i + 1] & 0x3F) << 12 | UInt32(p[i + 2] & 0x3F) << 6 | UInt32(p[i + 3] & 0x3F), 4)
    }

    static func decode(_ a: [UInt8], _ i: Int) -> (UInt32, Int) {
        a.withUnsafeBufferPointer { decode($0, i) }
    }

    static func encode(_ v: UInt32, into out: inout [UInt8]) {
        if v < 0x80 {
            out.append(UInt8(v))
        } else if v < 0x800 {
            out.append(UInt8(0xC0 | v >> 6)); out.append(UInt8(0x80 | v & 0x3F))
        } else if v < 0x10000 {
            out.append(UInt8(0xE0 | v >> 12)); out.append(UInt8(0x80 | v >> 6 & 0x3F)); out.append(UInt8(0x80 | v & 0x3F))
        } else {
            out.append(UInt8(0xF0 | v >> 18)); out.append(UInt8(0x80 | v >> 12 & 0x3F))
            out.append(UInt8(0x80 | v >> 6 & 0x3F)); out.append(UInt8(0x80 | v & 0x3F))
        }
    }
}

/// The split pattern of LLaMA-3 (and, with single digits, Qwen2) as a hand-written scanner, equal to Oniguruma's
/// leftmost-first matching of
/// `(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}{1,3}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+`
/// (every scalar belongs to exactly one match, so "Isolated" splitting = the list of matches).
struct SplitScanner: Sendable {
    enum Pattern: Sendable { case llama3, qwen2 }
    static let llama3Regex = #"(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}{1,3}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+"#
    static let qwen2Regex = #"(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+"#

    let maxDigits: Int
    let classes: [UInt8]

    init(_ p: Pattern) {
        maxDigits = p == .llama3 ? 3 : 1
        classes = UnicodeData.classes
    }

    static func pattern(_ regex: String) -> Pattern? {
        if regex.utf8.elementsEqual(llama3Regex.utf8) { return .llama3 }
        if regex.utf8.elementsEqual(qwen2Regex.utf8) { return .qwen2 }
        return nil
    }

    /// Calls `piece(start, end)` (byte offsets into `text`) for each match, in order.
    func split(_ text: UnsafeBufferPointer<UInt8>, _ piece: (Int, Int) -> Void) {
        let n = text.count
        guard n > 0 else { return }
        // Decode once: class, scalar value and byte offset per scalar.
        var cls = [UInt8](), val = [UInt32](), off = [Int32]()
        cls.reserveCapacity(n); val.reserveCapacity(n); off.reserveCapacity(n + 1)
        classes.withUnsafeBufferPointer { table in
            var i = 0
            while i < n {
                let (v, len) = UTF8Scalars.decode(text, i)
                cls.append(table[Int(v)])
                val.append(v)
                off.append(Int32(i))
                i += len
            }
        }
        off.append(Int32(n))
        let m = cls.count
        let L = UnicodeData.letter, N = UnicodeData.number, WS = UnicodeData.space, NL = UnicodeData.newline
        let O = UnicodeData.other
        var i = 0
        while i < m {
            let c = cls[i]
            var e = i + 1
            // 1. contractions, ASCII case-insensitive (and ſ U+017F for s, which Oniguruma folds to s)
            if val[i] == 0x27, i + 1 < m {
                let a = lower(val[i + 1])
                if a == 0x73 || a == 0x74 || a == 0x6D || a == 0x64 || val[i + 1] == 0x17F {
                    piece(Int(off[i]), Int(off[i + 2])); i += 2; continue
                }
                if i + 2 < m {
                    let b = lower(val[i + 2])
                    if (a == 0x72 && b == 0x65) || (a == 0x76 && b == 0x65) || (a == 0x6C && b == 0x6C) {
                        piece(Int(off[i]), Int(off[i + 3])); i += 3; continue
                    }
                }
            }
            // 2. letters, optionally after one non-letter, non-number, non-newline scalar
            if c == L || ((c == WS || c == O) && i + 1 < m && cls[i + 1] == L) {
                e = c == L ? i + 1 : i + 2
                while e < m && cls[e] == L { e += 1 }
            } else if c == N {
                // 3. up to maxDigits numbers
                while e < m && e - i < maxDigits && cls[e] == N { e += 1 }
            } else if c == O || (val[i] == 0x20 && i + 1 < m && cls[i + 1] == O) {
                // 4. optional space, symbols/punctuation, trailing newlines
                if c != O { e = i + 1 }
                while e < m && cls[e] == O { e += 1 }
                while e < m && cls[e] == NL { e += 1 }
            } else {
                // 5. whitespace runs
                var r = i
                var lastNL = -1
                while r < m && (cls[r] == WS || cls[r] == NL) {
                    if cls[r] == NL { lastNL = r }
                    r += 1
                }
                if lastNL >= 0 {
                    e = lastNL + 1
                } else if r == m || r - i == 1 {
                    e = r
                } else {
                    e = r - 1
                }
            }
            piece(Int(off[i]), Int(off[e]))
            i = e
        }
    }

    @inline(__always) private func lower(_ v: UInt32) -> UInt32 { (v >= 0x41 && v <= 0x5A) ? v + 0x20 : v }
}
