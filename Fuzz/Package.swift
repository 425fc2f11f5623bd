// swift-tools-version:6.1
// libFuzzer harnesses, kept out of the main package so a plain `swift build` never needs the
// fuzzer runtime. Build and run with scripts/fuzz TARGET SECONDS.

import PackageDescription

let package = Package(
    name: "gatehouse-fuzz",
    platforms: [.macOS(.v15)],
    dependencies: [
        .package(name: "gatehouse", path: ".."),
        .package(url: "https://github.com/apple/swift-crypto.git", "3.12.3"..<"5.0.0"),
    ],
    targets: [
        .executableTarget(
            name: "fuzz-config",
            dependencies: [.product(name: "GatehouseCore", package: "gatehouse")]
        ),
        .executableTarget(
            name: "fuzz-policy",
            dependencies: [.product(name: "GatehousePolicy", package: "gatehouse")]
        ),
        .executableTarget(
            name: "fuzz-cbor",
            dependencies: [.product(name: "GatehouseWebAuthn", package: "gatehouse")]
        ),
        .executableTarget(
            name: "fuzz-oauth",
            dependencies: [.product(name: "GatehouseOIDC", package: "gatehouse"), .product(name: "GatehouseCore", package: "gatehouse")]
        ),
        .executableTarget(
            name: "fuzz-csr",
            dependencies: [.product(name: "GatehousePKI", package: "gatehouse"), .product(name: "GatehouseCore", package: "gatehouse")]
        ),
        .executableTarget(
            name: "fuzz-network",
            dependencies: [.product(name: "GatehouseHostNetwork", package: "gatehouse"), .product(name: "GatehouseCore", package: "gatehouse")]
        ),
        .executableTarget(
            name: "fuzz-recording",
            dependencies: [
                .product(name: "GatehouseRecording", package: "gatehouse"), .product(name: "GatehouseCore", package: "gatehouse"),
                .product(name: "Crypto", package: "swift-crypto"),
            ]
        ),
        .executableTarget(
            name: "fuzz-graphql",
            dependencies: [.product(name: "GatehouseGraphQL", package: "gatehouse")]
        ),
    ]
)
