import Foundation
import Testing
@testable import CkptKit

/// The forward pass against transformers' float32 logits on the fixture models.
@Suite struct ForwardTests {
    @Test(arguments: ["tiny-llama", "tiny-llama-gqa"])
    func logitsMatchTransformers(model: String) throws {
        let f = try Fx.json("expected/\(model)/forward.json")
        let ids = f["input_ids"]!.arrayValue!.map { $0.intValue! }
        let m = LlamaModel(weights: try LlamaWeights(model: ModelFolder(Fx.path(model))), maxTokens: 64)
        let logits = m.forward(ids)
        let v = m.config.vocabSize
        let last = Array(logits[((ids.count - 1) * v)...])
        let want = f["last_logits"]!.arrayValue!.map { Float($0.doubleValue!) }
        let maxDiff = zip(last, want).map { abs($0 - $1) }.max()!
        #expect(maxDiff <= 1e-3, "\(model): max |Δlogit| \(maxDiff)")
        let argmax = (0..<ids.count).map { t in (0..<v).max { logits[t * v + $0] < logits[t * v + $1] }! }
        #expect(argmax == f["argmax_per_position"]!.arrayValue!.map { $0.intValue! })
        // Mean NLL of the next token over the prompt.
        var nll = 0.0
        for t in 0..<(ids.count - 1) {
            let row = logits[(t * v)..<((t + 1) * v)]
            let mx = row.max()!
            let lse = Double(mx) + log(row.reduce(0.0) { $0 + exp(Double($1 - mx)) })
            nll += lse - Double(logits[t * v + ids[t + 1]])
        }
        nll /= Double(ids.count - 1)
        #expect(abs(nll - f["mean_nll"]!.doubleValue!) < 1e-3, "nll \(nll)")
    }
}
