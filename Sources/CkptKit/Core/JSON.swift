/// A small, strict JSON reader and writer.
///
/// Why not Foundation's JSONSerialization: safetensors headers and index files are untrusted input and ckpt must
/// (a) reject duplicate keys with the key named, (b) keep key order, (c) read integers exactly as u64 and tell
/// `1` from `1.0`, (d) bound nesting depth, and (e) write bytes identical to serde_json (the safetensors writer)
/// and to Python's `json.dumps` (transformers' index files). Those are not available from Foundation.
public indirect enum JSON: Sendable, Equatable {
    case null
    case bool(Bool)
    /// A number, kept as its source text so integers stay exact and `1` differs from `1.0`.
    case number(String)
    case string(String)
    case array([JSON])
    /// Members in document order.
    case object([(String, JSON)])

    public static func == (a: JSON, b: JSON) -> Bool {
        switch (a, b) {
        case (.null, .null): return true
        case let (.bool(x), .bool(y)): return x == y
        case let (.number(x), .number(y)): return x == y || (Double(x) != nil && Double(x) == Double(y))
        case let (.string(x), .string(y)): return x == y
        case let (.array(x), .array(y)): return x == y
        case let (.object(x), .object(y)):
            return x.count == y.count && zip(x, y).allSatisfy { $0.0 == $1.0 && $0.1 == $1.1 }
        default: return false
        }
    }

    public static func int(_ v: Int) -> JSON { .number(String(v)) }

    public subscript(key: String) -> JSON? {
        guard case .object(let members) = self else { return nil }
        // Last one wins, as in Python's json and serde (callers that must reject duplicates parse strictly).
        return members.last(where: { $0.0 == key })?.1
    }

    public var objectMembers: [(String, JSON)]? { if case .object(let m) = self { return m } else { return nil } }
    public var arrayValue: [JSON]? { if case .array(let a) = self { return a } else { return nil } }
    public var stringValue: String? { if case .string(let s) = self { return s } else { return nil } }
    public var boolValue: Bool? { if case .bool(let b) = self { return b } else { return nil } }
    public var isNull: Bool { if case .null = self { return true } else { return false } }

    /// A JSON integer (no fraction or exponent) that fits in Int64.
    public var intValue: Int? {
        guard case .number(let s) = self, !s.contains(where: { $0 == "." || $0 == "e" || $0 == "E" }) else { return nil }
        return Int(s)
    }
    /// A non-negative JSON integer that fits in Int (usize semantics).
    public var unsignedValue: Int? { intValue.flatMap { $0 >= 0 ? $0 : nil } }
    /// A non-negative JSON integer up to u64::MAX (what serde reads as usize).
    public var u64Value: UInt64? {
        guard case .number(let s) = self, !s.contains(where: { $0 == "." || $0 == "e" || $0 == "E" }) else { return nil }
        return UInt64(s)
    }
    /// Any JSON number as a Double.
    public var doubleValue: Double? { if case .number(let s) = self { return Double(s) } else { return nil } }
}

public struct JSONParseError: Error, CustomStringConvertible, Sendable {
    public enum Kind: Sendable, Equatable {
        case syntax(String)
        case duplicateKey(String)
        case tooDeep
    }
    public let kind: Kind
    public let offset: Int
    public var description: String {
        switch kind {
        case .syntax(let m): "\(m) at byte \(offset)"
        case .duplicateKey(let k): "duplicate key \"\(k)\" at byte \(offset)"
        case .tooDeep: "nesting deeper than \(JSONParser.maxDepth) at byte \(offset)"
        }
    }
}

public struct JSONParser {
    /// Nesting limit: checkpoint headers and configs are 3–4 levels deep; this keeps hostile input off the stack.
    public static let maxDepth = 128

    private let bytes: UnsafeRawBufferPointer
    private var i = 0
    private let rejectDuplicateKeys: Bool

    /// Parses one JSON value, allowing whitespace before and after it and nothing else.
    public static func parse(_ bytes: UnsafeRawBufferPointer, rejectDuplicateKeys: Bool = false) throws(JSONParseError) -> JSON {
        var p = JSONParser(bytes: bytes, rejectDuplicateKeys: rejectDuplicateKeys)
        p.skipSpace()
        let v = try p.value(depth: 0)
        p.skipSpace()
        if p.i != bytes.count { throw p.fail("trailing characters") }
        return v
    }

    public static func parse(_ text: String, rejectDuplicateKeys: Bool = false) throws(JSONParseError) -> JSON {
        var t = text
        let r: Result<JSON, JSONParseError> = t.withUTF8 { buf in
            do throws(JSONParseError) {
                return .success(try parse(UnsafeRawBufferPointer(buf), rejectDuplicateKeys: rejectDuplicateKeys))
            } catch { return .failure(error) }
        }
        return try r.get()
    }

    private init(bytes: UnsafeRawBufferPointer, rejectDuplicateKeys: Bool) {
        self.bytes = bytes
        self.rejectDuplicateKeys = rejectDuplicateKeys
    }

    private func fail(_ m: String) -> JSONParseError { JSONParseError(kind: .syntax(m), offset: i) }

    private mutating func skipSpace() {
        while i < bytes.count {
            let c = bytes[i]
            if c == 0x20 || c == 0x0A || c == 0x0D || c == 0x09 { i += 1 } else { break }
        }
    }

    private mutating func value(depth: Int) throws(JSONParseError) -> JSON {
        guard depth < JSONParser.maxDepth else { throw JSONParseError(kind: .tooDeep, offset: i) }
        guard i < bytes.count else { throw fail("unexpected end of input") }
        switch bytes[i] {
        case UInt8(ascii: "{"): return try object(depth: depth)
        case UInt8(ascii: "["): return try array(depth: depth)
        case UInt8(ascii: "\""): return .string(try string())
        case UInt8(ascii: "t"): try literal("true"); return .bool(true)
        case UInt8(ascii: "f"): try literal("false"); return .bool(false)
        case UInt8(ascii: "n"): try literal("null"); return .null
        case UInt8(ascii: "-"), UInt8(ascii: "0")...UInt8(ascii: "9"): return .number(try number())
        default: throw fail("expected a value")
        }
    }

    private mutating func literal(_ word: StaticString) throws(JSONParseError) {
        let n = word.utf8CodeUnitCount
        guard i + n <= bytes.count else { throw fail("unexpected end of input") }
        for k in 0..<n where bytes[i + k] != word.utf8Start[k] { throw fail("invalid literal") }
        i += n
    }

    private mutating func object(depth: Int) throws(JSONParseError) -> JSON {
        i += 1
        var members: [(String, JSON)] = []
        var seen = Set<String>()
        skipSpace()
        if i < bytes.count && bytes[i] == UInt8(ascii: "}") { i += 1; return .object(members) }
        while true {
            skipSpace()
            guard i < bytes.count, bytes[i] == UInt8(ascii: "\"") else { throw fail("expected a string key") }
            let keyOffset = i
            let key = try string()
            if rejectDuplicateKeys {
                if seen.contains(key) { throw JSONParseError(kind: .duplicateKey(key), offset: keyOffset) }
                seen.insert(key)
            }
            skipSpace()
            guard i < bytes.count, bytes[i] == UInt8(ascii: ":") else { throw fail("expected ':'") }
            i += 1
            skipSpace()
            members.append((key, try value(depth: depth + 1)))
            skipSpace()
            guard i < bytes.count else { throw fail("unexpected end of input") }
            if bytes[i] == UInt8(ascii: ",") { i += 1; continue }
            if bytes[i] == UInt8(ascii: "}") { i += 1; return .object(members) }
            throw fail("expected ',' or '}'")
        }
    }

    private mutating func array(depth: Int) throws(JSONParseError) -> JSON {
        i += 1
        var items: [JSON] = []
        skipSpace()
        if i < bytes.count && bytes[i] == UInt8(ascii: "]") { i += 1; return .array(items) }
        while true {
            skipSpace()
            items.append(try value(depth: depth + 1))
            skipSpace()
            guard i < bytes.count else { throw fail("unexpected end of input") }
            if bytes[i] == UInt8(ascii: ",") { i += 1; continue }
            if bytes[i] == UInt8(ascii: "]") { i += 1; return .array(items) }
            throw fail("expected ',' or ']'")
        }
    }

    private mutating func number() throws(JSONParseError) -> String {
        let start = i
        if bytes[i] == UInt8(ascii: "-") { i += 1 }
        guard i < bytes.count, isDigit(bytes[i]) else { throw fail("invalid number") }
        if bytes[i] == UInt8(ascii: "0") { i += 1 } else { while i < bytes.count && isDigit(bytes[i]) { i += 1 } }
        if i < bytes.count && bytes[i] == UInt8(ascii: ".") {
            i += 1
            guard i < bytes.count, isDigit(bytes[i]) else { throw fail("invalid number") }
            while i < bytes.count && isDigit(bytes[i]) { i += 1 }
        }
        if i < bytes.count && (bytes[i] == UInt8(ascii: "e") || bytes[i] == UInt8(ascii: "E")) {
            i += 1
            if i < bytes.count && (bytes[i] == UInt8(ascii: "+") || bytes[i] == UInt8(ascii: "-")) { i += 1 }
            guard i < bytes.count, isDigit(bytes[i]) else { throw fail("invalid number") }
            while i < bytes.count && isDigit(bytes[i]) { i += 1 }
        }
        return String(decoding: UnsafeRawBufferPointer(rebasing: bytes[start..<i]), as: UTF8.self)
    }

    @inline(__always) private func isDigit(_ c: UInt8) -> Bool { c >= 0x30 && c <= 0x39 }

    private mutating func hex4() throws(JSONParseError) -> UInt32 {
        guard i + 4 <= bytes.count else { throw fail("unexpected end of input") }
        var v: UInt32 = 0
        for _ in 0..<4 {
            let c = bytes[i]
            let d: UInt32
            switch c {
            case 0x30...0x39: d = UInt32(c - 0x30)
            case 0x41...0x46: d = UInt32(c - 0x41 + 10)
            case 0x61...0x66: d = UInt32(c - 0x61 + 10)
            default: throw fail("invalid \\u escape")
            }
            v = v << 4 | d
            i += 1
        }
        return v
    }

    private mutating func string() throws(JSONParseError) -> String {
        i += 1  // opening quote
        var out: [UInt8] = []
        var runStart = i
        while true {
            guard i < bytes.count else { throw fail("unterminated string") }
            let c = bytes[i]
            if c == UInt8(ascii: "\"") {
                out.append(contentsOf: UnsafeRawBufferPointer(rebasing: bytes[runStart..<i]))
                i += 1
                break
            }
            if c < 0x20 { throw fail("control character in string") }
            if c != UInt8(ascii: "\\") { i += 1; continue }
            out.append(contentsOf: UnsafeRawBufferPointer(rebasing: bytes[runStart..<i]))
            i += 1
            guard i < bytes.count else { throw fail("unterminated string") }
            let e = bytes[i]
            i += 1
            switch e {
            case UInt8(ascii: "\""): out.append(0x22)
            case UInt8(ascii: "\\"): out.append(0x5C)
            case UInt8(ascii: "/"): out.append(0x2F)
            case UInt8(ascii: "b"): out.append(0x08)
            case UInt8(ascii: "f"): out.append(0x0C)
            case UInt8(ascii: "n"): out.append(0x0A)
            case UInt8(ascii: "r"): out.append(0x0D)
            case UInt8(ascii: "t"): out.append(0x09)
            case UInt8(ascii: "u"):
                var scalar = try hex4()
                if (0xD800..<0xDC00).contains(scalar) {
                    guard i + 6 <= bytes.count, bytes[i] == UInt8(ascii: "\\"), bytes[i + 1] == UInt8(ascii: "u") else {
                        throw fail("unpaired surrogate")
                    }
                    i += 2
                    let low = try hex4()
                    guard (0xDC00..<0xE000).contains(low) else { throw fail("unpaired surrogate") }
                    scalar = 0x10000 + ((scalar - 0xD800) << 10) + (low - 0xDC00)
                } else if (0xDC00..<0xE000).contains(scalar) {
                    throw fail("unpaired surrogate")
                }
                guard let u = Unicode.Scalar(scalar) else { throw fail("invalid \\u escape") }
                out.append(contentsOf: Array(String(Character(u)).utf8))
            default: throw fail("invalid escape")
            }
            runStart = i
        }
        guard let s = String(validating: out, as: UTF8.self) else { throw fail("invalid UTF-8 in string") }
        return s
    }
}

/// JSON text in the two dialects ckpt must reproduce byte for byte.
public enum JSONWriter {
    /// serde_json `to_string`: compact, non-ASCII kept as UTF-8, control characters as `\uXXXX` (lowercase hex)
    /// except the short escapes. Used by the safetensors writer.
    public static func compact(_ v: JSON) -> String {
        var out = ""
        writeCompact(v, &out)
        return out
    }

    /// Python's `json.dumps(v, indent=indent, sort_keys=sortKeys)` (ensure_ascii on): used for index files and
    /// manifests, matching transformers' `save_pretrained`.
    public static func python(_ v: JSON, indent: Int = 2, sortKeys: Bool = true) -> String {
        var out = ""
        writePython(v, indent: indent, sortKeys: sortKeys, level: 0, &out)
        return out
    }

    private static func writeCompact(_ v: JSON, _ out: inout String) {
        switch v {
        case .null: out += "null"
        case .bool(let b): out += b ? "true" : "false"
        case .number(let n): out += n
        case .string(let s): serdeString(s, &out)
        case .array(let a):
            out += "["
            for (k, x) in a.enumerated() { if k > 0 { out += "," }; writeCompact(x, &out) }
            out += "]"
        case .object(let m):
            out += "{"
            for (k, (key, x)) in m.enumerated() {
                if k > 0 { out += "," }
                serdeString(key, &out)
                out += ":"
                writeCompact(x, &out)
            }
            out += "}"
        }
    }

    static func serdeString(_ s: String, _ out: inout String) {
        out += "\""
        for u in s.unicodeScalars {
            switch u {
            case "\"": out += "\\\""
            case "\\": out += "\\\\"
            case "\u{08}": out += "\\b"
            case "\u{0C}": out += "\\f"
            case "\n": out += "\\n"
            case "\r": out += "\\r"
            case "\t": out += "\\t"
            default:
                if u.value < 0x20 { out += "\\u00" + hex2(u.value) } else { out.unicodeScalars.append(u) }
            }
        }
        out += "\""
    }

    static func pythonString(_ s: String, _ out: inout String) {
        out += "\""
        for u in s.unicodeScalars {
            switch u {
            case "\"": out += "\\\""
            case "\\": out += "\\\\"
            case "\u{08}": out += "\\b"
            case "\u{0C}": out += "\\f"
            case "\n": out += "\\n"
            case "\r": out += "\\r"
            case "\t": out += "\\t"
            default:
                if u.value < 0x20 || u.value > 0x7E {
                    if u.value > 0xFFFF {
                        let v = u.value - 0x10000
                        out += "\\u" + hex4(0xD800 + (v >> 10)) + "\\u" + hex4(0xDC00 + (v & 0x3FF))
                    } else {
                        out += "\\u" + hex4(u.value)
                    }
                } else {
                    out.unicodeScalars.append(u)
                }
            }
        }
        out += "\""
    }

    private static func hex2(_ v: UInt32) -> String {
        let d = Array("0123456789abcdef")
        return String([d[Int(v >> 4 & 0xF)], d[Int(v & 0xF)]])
    }
    private static func hex4(_ v: UInt32) -> String { hex2(v >> 8) + hex2(v & 0xFF) }

    /// Python sorts keys by code point, which is byte order of UTF-8.
    static func codePointLess(_ a: String, _ b: String) -> Bool {
        a.unicodeScalars.lexicographicallyPrecedes(b.unicodeScalars) { $0.value < $1.value }
    }

    private static func writePython(_ v: JSON, indent: Int, sortKeys: Bool, level: Int, _ out: inout String) {
        let pad = String(repeating: " ", count: indent * (level + 1))
        let closePad = String(repeating: " ", count: indent * level)
        switch v {
        case .null: out += "null"
        case .bool(let b): out += b ? "true" : "false"
        case .number(let n): out += n
        case .string(let s): pythonString(s, &out)
        case .array(let a):
            if a.isEmpty { out += "[]"; return }
            out += "[\n"
            for (k, x) in a.enumerated() {
                out += pad
                writePython(x, indent: indent, sortKeys: sortKeys, level: level + 1, &out)
                out += k + 1 < a.count ? ",\n" : "\n"
            }
            out += closePad + "]"
        case .object(var m):
            if m.isEmpty { out += "{}"; return }
            if sortKeys { m.sort { codePointLess($0.0, $1.0) } }
            out += "{\n"
            for (k, (key, x)) in m.enumerated() {
                out += pad
                pythonString(key, &out)
                out += ": "
                writePython(x, indent: indent, sortKeys: sortKeys, level: level + 1, &out)
                out += k + 1 < m.count ? ",\n" : "\n"
            }
            out += closePad + "}"
        }
    }
}

extension JSON {
    /// Sets `key` in an object's members: replaced in place when present (order kept), appended otherwise.
    public static func set(_ members: inout [(String, JSON)], _ key: String, _ value: JSON) {
        if let i = members.firstIndex(where: { $0.0 == key }) { members[i].1 = value } else { members.append((key, value)) }
    }
}
