import Foundation
import Testing
@testable import CkptKit

/// The SentencePiece tokenizer against sentencepiece 0.2.3's own encodings of the fixture strings.
@Suite struct TokenizerTests {
    @Test func encodeAndDecodeMatchSentencePiece() throws {
        let tok = try Tokenizer(path: Fx.path("tokenizer/tokenizer.model"))
        let e = try Fx.json("expected/tokenizer/encodings.json")
        #expect(tok.vocabularySize == e["vocab_size"]?.intValue)
        let samples = try #require(e["samples"]?.arrayValue)
        #expect(samples.count >= 15)
        for s in samples {
            let text = s["text"]!.stringValue!
            let ids = s["ids"]!.arrayValue!.map { $0.intValue! }
            #expect(tok.encode(text) == ids, "encode \(text.debugDescription)")
            #expect(tok.decode(ids) == s["decoded"]?.stringValue, "decode \(text.debugDescription)")
        }
    }

    @Test func piecesScoresAndTypesAreRead() throws {
        let m = try SentencePieceModel.read(path: Fx.path("tokenizer/tokenizer.model"))
        let e = try Fx.json("expected/tokenizer/encodings.json")["pieces"]!.arrayValue!
        #expect(m.pieces.count == e.count)
        for (p, x) in zip(m.pieces, e) {
            let a = x.arrayValue!
            #expect(p.piece == a[0].stringValue && Double(p.score) == a[1].doubleValue)
            #expect("\(p.type)".lowercased().hasPrefix(a[2].stringValue!.lowercased().prefix(4)))
        }
        #expect(m.byteFallback && m.addDummyPrefix && !m.removeExtraWhitespaces && m.modelType == 2)
    }
}
