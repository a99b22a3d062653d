/// Statistics that tell trained weights from deltas and from nonsense, used by `apply-delta` / `make-delta`
/// before anything is written, and by `verify`.
///
/// Facts they rest on: RMSNorm weights of a trained LLaMA average well above 0 (they start at 1; real models keep
/// means of roughly 0.05–2), while a delta's norm weights are the small differences of two such vectors (means near
/// 0); embeddings of a trained model have an RMS between about 1e-3 and 1.
public enum WeightStatistics {
    /// Means above this: looks like full weights. Below `deltaNormMean`: looks like a delta.
    public static let weightsNormMean = 0.2
    public static let deltaNormMean = 0.1
    /// Plausible ranges for a finished model.
    public static let plausibleNormMean = 0.01...20.0
    public static let plausibleEmbeddingRMS = 1e-4...10.0

    public static func isNorm(_ name: String) -> Bool {
        name.hasSuffix("layernorm.weight") || name.hasSuffix("norm.weight")
    }

    /// Mean and RMS of all elements of a float tensor (read through the mapping; meant for small tensors).
    public static func meanAndRMS(_ t: StoredTensor, rows: Range<Int>? = nil) -> (mean: Double, rms: Double) {
        let values = floats(t, rows: rows)
        guard !values.isEmpty else { return (0, 0) }
        var sum = 0.0, sq = 0.0
        for v in values { sum += Double(v); sq += Double(v) * Double(v) }
        return (sum / Double(values.count), (sq / Double(values.count)).squareRoot())
    }

    /// The elements of `rows` (all when nil) as f32.
    public static func floats(_ t: StoredTensor, rows: Range<Int>? = nil) -> [Float] {
        let rb = t.info.rowBytes, sz = t.info.dtype.size
        let range = rows.map { ($0.lowerBound * rb)..<($0.upperBound * rb) } ?? 0..<t.byteCount
        let n = range.count / sz
        guard t.info.dtype.isFloat, n > 0 else { return [] }
        var out = [Float](repeating: 0, count: n)
        out.withUnsafeMutableBufferPointer { Kernels.toFloat32(t.bytes(range).baseAddress!, from: t.info.dtype, $0.baseAddress!, count: n) }
        t.release(range)  // a read here maps whole page-cache folios: drop them, or they stay resident until streamed
        return out
    }

    /// The average of the means of a model's norm weights, or nil when it has none.
    public static func normMean(_ tensors: [StoredTensor]) -> Double? {
        let norms = tensors.filter { isNorm($0.name) && $0.info.dtype.isFloat }
        guard !norms.isEmpty else { return nil }
        return norms.map { meanAndRMS($0).mean }.reduce(0, +) / Double(norms.count)
    }
}
