/// Errors reading a SentencePiece `tokenizer.model` (a protobuf `ModelProto`).
public enum SentencePieceError: CkptError, Equatable {
    case malformed(file: String, offset: Int, detail: String)
    case tooLarge(file: String, size: Int)

    public static let domain = "sentencepiece"

    public var description: String {
        switch self {
        case let .malformed(f, o, d): "\(f): not a valid SentencePiece model at byte \(o): \(d)"
        case let .tooLarge(f, s): "\(f): \(s) bytes is larger than any tokenizer model"
        }
    }
}

/// The pieces of a SentencePiece model (`sentencepiece_model.proto`: ModelProto.pieces = 1; each SentencePiece has
/// piece = 1, score = 2, type = 3). Other fields are skipped by wire type, bounds-checked.
public struct SentencePieceModel: Sendable {
    public enum PieceType: Int, Sendable { case normal = 1, unknown = 2, control = 3, userDefined = 4, unused = 5, byte = 6 }

    public struct Piece: Sendable, Equatable {
        public var piece: String
        public var score: Float
        public var type: PieceType
    }

    public let pieces: [Piece]
    /// NormalizerSpec: add_dummy_prefix (3, default true), remove_extra_whitespaces (4, default true),
    /// escape_whitespaces (5, default true).
    public var addDummyPrefix = true
    public var removeExtraWhitespaces = true
    public var escapeWhitespaces = true
    /// TrainerSpec: model_type (3: 1 unigram, 2 bpe, 3 word, 4 char), byte_fallback (35),
    /// treat_whitespace_as_suffix (24), unk_surface (44), bos_piece (46), eos_piece (47).
    public var modelType = 1
    public var byteFallback = false
    public var treatWhitespaceAsSuffix = false
    public var unkSurface = " \u{2047} "
    public var bosPiece = "<s>"
    public var eosPiece = "</s>"
    /// NormalizerSpec precompiled_charsmap (2): non-empty means a normalization rule other than identity.
    public var hasPrecompiledCharsmap = false

    /// Real LLaMA tokenizers are ~0.5 MB (32k pieces); Llama-3-size vocabularies stay well under this.
    public static let maxSize = 64 << 20

    /// A model from pieces given directly (GGUF's tokenizer.ggml.* arrays): LLaMA's settings.
    public init(pieces: [Piece]) {
        self.pieces = pieces
        addDummyPrefix = true
        removeExtraWhitespaces = false
        modelType = 2
        byteFallback = pieces.contains { $0.type == .byte }
    }

    public static func read(path: String) throws -> SentencePieceModel {
        let f = try MappedFile(path: path)
        guard f.size <= maxSize else { throw SentencePieceError.tooLarge(file: path, size: f.size) }
        return try SentencePieceModel(bytes: f.all, path: path)
    }

    public init(bytes: UnsafeRawBufferPointer, path: String) throws(SentencePieceError) {
        var r = ProtoReader(bytes: bytes, path: path)
        var list: [Piece] = []
        while !r.isAtEnd {
            let (field, wire) = try r.key()
            if field == 1 && wire == 2 {
                var p = try r.message()
                var piece = "", score: Float = 0, type = PieceType.normal
                while !p.isAtEnd {
                    let (f2, w2) = try p.key()
                    switch (f2, w2) {
                    case (1, 2):
                        let b = try p.lengthDelimited()
                        guard let s = String(validating: b, as: UTF8.self) else { throw p.fail("piece is not UTF-8") }
                        piece = s
                    case (2, 5): score = Float(bitPattern: try p.fixed32())
                    case (3, 0):
                        let v = try p.varint()
                        guard let t = PieceType(rawValue: Int(truncatingIfNeeded: v)) else { throw p.fail("unknown piece type \(v)") }
                        type = t
                    default: try p.skip(wire: w2)
                    }
                }
                list.append(Piece(piece: piece, score: score, type: type))
            } else if (field == 2 || field == 3) && wire == 2 {
                var p = try r.message()
                while !p.isAtEnd {
                    let (f2, w2) = try p.key()
                    if w2 == 0 {
                        let v = try p.varint()
                        switch (field, f2) {
                        case (2, 3): modelType = Int(truncatingIfNeeded: v)
                        case (2, 24): treatWhitespaceAsSuffix = v != 0
                        case (2, 35): byteFallback = v != 0
                        case (3, 3): addDummyPrefix = v != 0
                        case (3, 4): removeExtraWhitespaces = v != 0
                        case (3, 5): escapeWhitespaces = v != 0
                        default: break
                        }
                    } else if w2 == 2 && (field, f2) == (3, 2) {
                        hasPrecompiledCharsmap = try !p.lengthDelimited().isEmpty
                    } else if w2 == 2 && field == 2 && [44, 46, 47].contains(f2) {
                        let b = try p.lengthDelimited()
                        guard let text = String(validating: b, as: UTF8.self) else { throw p.fail("trainer_spec string is not UTF-8") }
                        switch f2 {
                        case 44: unkSurface = text
                        case 46: bosPiece = text
                        default: eosPiece = text
                        }
                    } else {
                        try p.skip(wire: w2)
                    }
                }
            } else {
                try r.skip(wire: wire)
            }
        }
        guard !list.isEmpty else { throw ProtoReader(bytes: bytes, path: path).fail("no pieces") }
        pieces = list
    }
}

/// Protobuf wire-format reading over the core's `ByteReader`: every short read or bad length is
/// `SentencePieceError.malformed` at its file offset.
struct ProtoReader {
    var r: ByteReader<SentencePieceError>
    let path: String

    init(bytes: UnsafeRawBufferPointer, path: String) {
        self.path = path
        r = ByteReader(bytes) { f in
            switch f {
            case .truncated(let o, _, let what): .malformed(file: path, offset: o, detail: what)
            case .varintTooLong(let o, _): .malformed(file: path, offset: o, detail: "varint longer than 10 bytes")
            }
        }
    }

    private init(_ r: ByteReader<SentencePieceError>, path: String) {
        self.r = r
        self.path = path
    }

    var isAtEnd: Bool { r.isAtEnd }
    var offset: Int { r.position }

    func fail(_ d: String) -> SentencePieceError { .malformed(file: path, offset: r.position, detail: d) }

    mutating func varint() throws(SentencePieceError) -> UInt64 { try r.varint("truncated varint") }

    mutating func key() throws(SentencePieceError) -> (Int, Int) {
        let k = try varint()
        guard k >> 3 > 0, k >> 3 < 1 << 29 else { throw fail("invalid field number") }
        return (Int(k >> 3), Int(k & 7))
    }

    mutating func fixed32() throws(SentencePieceError) -> UInt32 { try r.u32("truncated fixed32") }

    /// A length-delimited field: its bytes, as a reader of their own (offsets stay file offsets).
    mutating func message() throws(SentencePieceError) -> ProtoReader {
        let n = try varint()
        guard n <= UInt64(r.remaining) else { throw fail("length \(n) runs past the end") }
        return ProtoReader(try r.sub(Int(n)), path: path)
    }

    mutating func lengthDelimited() throws(SentencePieceError) -> UnsafeRawBufferPointer { try message().r.buffer }

    mutating func skip(wire: Int) throws(SentencePieceError) {
        switch wire {
        case 0: _ = try varint()
        case 1: try r.skip(8, "truncated fixed64")
        case 2: _ = try lengthDelimited()
        case 5: try r.skip(4, "truncated fixed32")
        default: throw fail("unsupported wire type \(wire)")
        }
    }
}
