// swift-tools-version:6.0
import PackageDescription
import Foundation

// ckpt: LLaMA-family checkpoint weights — apply/make deltas, convert, quantize, checksum, verify.
//
// Float16 arithmetic: the hot kernels live in the C target `CKernels`, compiled for a portable baseline with
// per-function `__attribute__((target("avx2,f16c,fma")))` variants chosen at run time. We deliberately do *not* use
// `unsafeFlags(["-Xcc", "-mf16c"])`: it breaks arm64 builds and forbids other packages from depending on CkptKit.
let package = Package(
    name: "ckpt",
    platforms: [.macOS(.v15)],
    products: [
        .executable(name: "ckpt", targets: ["ckpt"]),
        .library(name: "CkptKit", targets: ["CkptKit"]),
    ],
    dependencies: [
        .package(url: "https://github.com/apple/swift-argument-parser", from: "1.8.2"),
    ],
    targets: [
        // System libraries of the field: zlib (CRC-32, inflate) and OpenSSL libcrypto (SHA-256).
        // Named CZlibShim, not CZlib, so that a dependency declaring its own `CZlib` module cannot collide.
        .systemLibrary(name: "CZlibShim", pkgConfig: "zlib",
                       providers: [.apt(["zlib1g-dev"]), .brew(["zlib"])]),
        .systemLibrary(name: "COpenSSL", pkgConfig: "libcrypto",
                       providers: [.apt(["libssl-dev"]), .brew(["openssl@3"])]),
        .target(name: "CKernels"),
        .target(
            name: "CkptKit",
            dependencies: ["CZlibShim", "COpenSSL", "CKernels"]
        ),
        .executableTarget(
            name: "ckpt",
            dependencies: ["CkptKit", .product(name: "ArgumentParser", package: "swift-argument-parser")]
        ),
        // Benchmark inputs and probes for `make bench`; not part of the product.
        .executableTarget(name: "ckpt-bench", dependencies: ["CkptKit"], path: "Benchmarks/Sources/ckpt-bench"),
        .testTarget(
            name: "CkptKitTests",
            dependencies: ["CkptKit"]
        ),
    ],
    swiftLanguageModes: [.v6]
)

// The libFuzzer target (no main: libFuzzer provides it) exists only for `make fuzz`, which sets CKPT_FUZZ=1 and builds
// with --sanitize=fuzzer,address; a plain `swift build` would fail to link it.
if ProcessInfo.processInfo.environment["CKPT_FUZZ"] == "1" {
    package.targets.append(.executableTarget(name: "ckpt-fuzz", dependencies: ["CkptKit"], path: "Sources/ckpt-fuzz"))
}
