/// Number and size formatting for human-readable output.
public enum NumberFormat {
    /// 1234567 → "1,234,567".
    public static func grouped(_ n: Int) -> String {
        let s = String(n.magnitude)
        var out = ""
        for (i, c) in s.enumerated() {
            if i > 0 && (s.count - i) % 3 == 0 { out.append(",") }
            out.append(c)
        }
        return n < 0 ? "-" + out : out
    }

    /// Two-digit zero-padded decimal (minutes:seconds).
    public static func twoDigits(_ v: Int) -> String { v < 10 ? "0\(v)" : "\(v)" }

    /// Bytes in binary units: "1.5 GiB".
    public static func bytes(_ n: Int) -> String {
        let units = ["B", "KiB", "MiB", "GiB", "TiB"]
        var v = Double(n)
        var u = 0
        while v >= 1024 && u < units.count - 1 { v /= 1024; u += 1 }
        return u == 0 ? "\(n) B" : fixed(v, 1) + " " + units[u]
    }

    /// A double with `digits` decimals.
    public static func fixed(_ v: Double, _ digits: Int) -> String {
        guard v.isFinite else { return "\(v)" }
        var p = 1.0
        for _ in 0..<digits { p *= 10 }
        let r = (abs(v) * p).rounded()
        let whole = Int(r / p)
        var frac = String(Int(r.truncatingRemainder(dividingBy: p)))
        while frac.count < digits { frac = "0" + frac }
        return (v < 0 && r != 0 ? "-" : "") + String(whole) + (digits > 0 ? "." + frac : "")
    }

    /// Python's `repr(float)`: integral values keep ".0" (10000.0); others use the shortest round-trip form.
    public static func pythonFloat(_ v: Double) -> String {
        if v == v.rounded() && abs(v) < 1e16 { return String(Int(v)) + ".0" }
        return "\(v)"
    }

    /// A short general number: integers without ".0", others as Swift prints them (1e-05, 0.5).
    public static func number(_ v: Double) -> String {
        if v == v.rounded() && abs(v) < 1e15 { return String(Int(v)) }
        return "\(v)"
    }
}

/// `--max-shard-size` values, parsed as transformers / huggingface_hub do: decimal units (5GB = 5·10⁹),
/// plus the binary units older transformers accepted (GiB = 2³⁰).
public enum ByteSize {
    public static func parse(_ text: String) -> Int? {
        let t = text.trimmingCharacters(in: " ")
        if let n = Int(t), n > 0 { return n }
        let units: [(String, Double)] = [
            ("TIB", 1_099_511_627_776), ("GIB", 1_073_741_824), ("MIB", 1_048_576), ("KIB", 1024),
            ("TB", 1e12), ("GB", 1e9), ("MB", 1e6), ("KB", 1e3), ("B", 1),
        ]
        let upper = t.uppercased()
        for (suffix, mult) in units where upper.hasSuffix(suffix) {
            guard let v = Double(upper.dropLast(suffix.count).trimmingCharacters(in: " ")), v > 0, v * mult < 9e18 else { return nil }
            return Int(v * mult)
        }
        return nil
    }
}

extension StringProtocol {
    func trimmingCharacters(in set: Character) -> String {
        var s = Substring(self)
        while s.first == set { s = s.dropFirst() }
        while s.last == set { s = s.dropLast() }
        return String(s)
    }
}
