#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// Log-probabilities and comparisons of logits rows.
public enum Logits {
    /// log-softmax of one row, in Double.
    public static func logSoftmax(_ row: ArraySlice<Float>) -> [Double] {
        let mx = Double(row.max() ?? 0)
        let lse = mx + log(row.reduce(0.0) { $0 + exp(Double($1) - mx) })
        return row.map { Double($0) - lse }
    }

    public static func argmax(_ row: ArraySlice<Float>) -> Int {
        var best = row.startIndex
        for i in row.indices where row[i] > row[best] { best = i }
        return best - row.startIndex
    }

    /// Mean negative log-likelihood of each next token (the perplexity's logarithm).
    public static func meanNLL(_ logits: [Float], tokens: [Int], vocab: Int) -> Double {
        guard tokens.count > 1 else { return 0 }
        var nll = 0.0
        for t in 0..<(tokens.count - 1) {
            nll -= logSoftmax(logits[(t * vocab)..<((t + 1) * vocab)])[tokens[t + 1]]
        }
        return nll / Double(tokens.count - 1)
    }
}
