import Synchronization

/// Runs a plan: streams every output tensor through its operation in bounded chunks into the shard writers.
/// Memory is the chunk buffers, allocated once; consumed input pages are released as it goes; conversions are
/// split across the cores.
public final class Engine {
    /// Bytes of one output chunk. Large enough to amortise system calls, small enough to stay in cache.
    public let chunkBytes: Int
    public let threads: Int
    private let scratch: UnsafeMutableRawBufferPointer   // output chunk
    private let floats: UnsafeMutableBufferPointer<Float>  // f32 staging for conversions
    private let progress: Progress?

    public init(chunkBytes: Int = 8 << 20, threads: Int = Parallel.threadCount, progress: Progress? = nil) {
        self.chunkBytes = chunkBytes
        self.threads = threads
        self.progress = progress
        scratch = .allocate(byteCount: chunkBytes, alignment: 64)
        floats = .allocate(capacity: chunkBytes / 2)
    }

    deinit {
        scratch.deallocate()
        floats.deallocate()
    }

    /// Writes every shard of `layout` into `folder`, recording each in the journal; then the index.
    public func write(_ plan: [PlannedTensor], layout: ShardLayout, into folder: OutputFolder) throws {
        let byName = Dictionary(uniqueKeysWithValues: plan.map { ($0.info.name, $0) })
        for shard in layout.shards {
            let writer = try layout.makeWriter(shard: shard, folder: folder)
            do {
                for t in writer.order where t.byteCount > 0 {
                    try stream(byName[t.name]!, into: writer)
                }
                let r = try writer.finish()
                try folder.finished(shard.name, sha256: r.sha256, bytes: r.bytes)
            } catch {
                writer.abort()
                throw error
            }
        }
        if let indexName = layout.indexFileName {
            try folder.writeSmallFile(indexName, contents: layout.indexText)
        }
    }

    /// Streams one tensor's output bytes into `writer`.
    func stream(_ p: PlannedTensor, into writer: any CheckpointWriter) throws {
        switch p.operation {
        case .copy(let src):
            var pos = 0
            while pos < src.byteCount {
                let end = min(pos + chunkBytes, src.byteCount)
                if end < src.byteCount { src.prefetch(end..<min(end + chunkBytes, src.byteCount)) }
                try writer.write(src.bytes(pos..<end), tensor: p.info.name)
                src.release(pos..<end)
                progress?.advance(by: end - pos)
                pos = end
            }
        case .cast(let src):
            let inSize = src.info.dtype.size, outSize = p.info.dtype.size
            let perChunk = chunkBytes / max(outSize, 4)
            let count = src.info.elementCount
            var first = 0
            while first < count {
                let n = min(perChunk, count - first)
                let input = src.bytes((first * inSize)..<((first + n) * inSize))
                convert(input, from: src.info.dtype, count: n, to: p.info.dtype)
                try writer.write(UnsafeRawBufferPointer(rebasing: scratch[0..<(n * outSize)]), tensor: p.info.name)
                src.release((first * inSize)..<((first + n) * inSize))
                progress?.advance(by: n * outSize)
                first += n
            }
        }
    }

    /// Converts `count` elements into `scratch`, splitting the work across threads in cache-sized slices.
    private func convert(_ input: UnsafeRawBufferPointer, from: DType, count: Int, to: DType) {
        let slice = 64 << 10
        let slices = (count + slice - 1) / slice
        let (src, dst, f32) = (UnsafeRawPointer(input.baseAddress!), scratch.baseAddress!, floats.baseAddress!)
        let inSize = from.size, outSize = to.size
        let srcAddr = Int(bitPattern: src), dstAddr = Int(bitPattern: dst), fAddr = Int(bitPattern: f32)
        Parallel.forEach(slices, threads: threads) { s in
            let lo = s * slice, n = min(slice, count - lo)
            let sp = UnsafeRawPointer(bitPattern: srcAddr)! + lo * inSize
            let dp = UnsafeMutableRawPointer(bitPattern: dstAddr)! + lo * outSize
            let fp = UnsafeMutablePointer<Float>(bitPattern: fAddr)! + lo
            Kernels.toFloat32(sp, from: from, fp, count: n)
            Kernels.fromFloat32(fp, to: to, dp, count: n)
            return true
        }
    }
}
