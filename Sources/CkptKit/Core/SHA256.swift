import COpenSSL

/// SHA-256 through OpenSSL's EVP interface (SHA-NI where the CPU has it: ~1.9 GB/s here vs ~0.5 GB/s for coreutils).
/// Not thread-safe: callers confine each hasher to one thread or serial queue at a time (hence @unchecked).
public final class SHA256Hasher: @unchecked Sendable {
    private let ctx: OpaquePointer

    public init() {
        // EVP_MD_CTX_new only fails when out of memory; there is nothing sensible to continue with then.
        guard let c = EVP_MD_CTX_new() else { fatalError("OpenSSL: EVP_MD_CTX_new failed (out of memory)") }
        ctx = c
        EVP_DigestInit_ex(ctx, EVP_sha256(), nil)
    }

    deinit { EVP_MD_CTX_free(ctx) }

    public func update(_ bytes: UnsafeRawBufferPointer) {
        guard let base = bytes.baseAddress, bytes.count > 0 else { return }
        EVP_DigestUpdate(ctx, base, bytes.count)
    }

    /// The digest as lowercase hex; the hasher must not be updated afterwards.
    public func finalizeHex() -> String {
        var digest = [UInt8](repeating: 0, count: 32)
        var len: UInt32 = 0
        EVP_DigestFinal_ex(ctx, &digest, &len)
        return SHA256Hasher.hex(digest)
    }

    public static func hex(_ bytes: [UInt8]) -> String {
        let digits = Array("0123456789abcdef".utf8)
        var out = [UInt8]()
        out.reserveCapacity(bytes.count * 2)
        for b in bytes {
            out.append(digits[Int(b >> 4)])
            out.append(digits[Int(b & 0xF)])
        }
        return String(decoding: out, as: UTF8.self)
    }

    public static func hash(_ bytes: UnsafeRawBufferPointer) -> String {
        let h = SHA256Hasher()
        h.update(bytes)
        return h.finalizeHex()
    }

    /// Hashes a mapped byte range chunk by chunk, releasing each chunk's pages after use.
    public static func hash(file: MappedFile, range: Range<Int>, chunk: Int = 8 << 20) -> String {
        let h = SHA256Hasher()
        var pos = range.lowerBound
        while pos < range.upperBound {
            let end = min(pos + chunk, range.upperBound)
            file.prefetch(pos..<end)
            if let b = file.bytes(pos..<end) { h.update(b) }
            file.release(pos..<end)
            pos = end
        }
        return h.finalizeHex()
    }
}
