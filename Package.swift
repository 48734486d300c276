// swift-tools-version: 6.2
import PackageDescription

// One module per layer; imports only point down towards WeirModel and WeirDiagnostics.
let package = Package(
    name: "Weir",
    products: [
        .executable(name: "weir", targets: ["weir"]),
        .library(name: "Weir", targets: ["WeirDSL", "WeirDriver"]),
    ],
    dependencies: [
        .package(url: "https://github.com/apple/swift-argument-parser", from: "1.5.0"),
    ],
    targets: [
        .target(name: "WeirDiagnostics"),
        .target(name: "WeirModel", dependencies: ["WeirDiagnostics"]),
        .target(name: "WeirPolicy", dependencies: ["WeirDiagnostics", "WeirModel"]),
        .target(name: "WeirDSL", dependencies: ["WeirPolicy"]),
        .target(name: "WeirSema", dependencies: ["WeirDiagnostics", "WeirModel", "WeirPolicy"]),
        .target(name: "WeirIptables", dependencies: ["WeirDiagnostics", "WeirModel"]),
        .target(name: "WeirNftables", dependencies: ["WeirDiagnostics", "WeirModel"]),
        .systemLibrary(name: "CNftnl", pkgConfig: "libnftnl", providers: [.apt(["libnftnl-dev", "libmnl-dev"])]),
        .target(name: "WeirNetlink", dependencies: ["CNftnl", "WeirDiagnostics", "WeirModel", "WeirNftables"]),
        .target(name: "WeirLab", dependencies: ["WeirModel", "WeirSema"]),
        .target(name: "WeirSimulator", dependencies: ["WeirModel", "WeirSema"]),
        .systemLibrary(name: "CMalloc"),
        .target(name: "WeirVerifier", dependencies: ["CMalloc", "WeirModel", "WeirSimulator"]),
        .target(name: "WeirDriver", dependencies: ["WeirDiagnostics", "WeirModel", "WeirPolicy", "WeirSema", "WeirIptables", "WeirNftables", "WeirNetlink", "WeirSimulator", "WeirVerifier"]),
        .executableTarget(name: "weir", dependencies: [
            "WeirDriver",
            "WeirLab",
            .product(name: "ArgumentParser", package: "swift-argument-parser"),
        ]),
        .target(name: "WeirTestFixtures", dependencies: ["WeirDiagnostics", "WeirModel", "WeirNftables"], path: "Tests/WeirTestFixtures"),
        .testTarget(name: "WeirTests", dependencies: ["WeirTestFixtures", "WeirDiagnostics", "WeirModel", "WeirPolicy", "WeirDSL", "WeirSema", "WeirIptables", "WeirNftables", "WeirNetlink", "WeirSimulator", "WeirVerifier", "WeirDriver"]),
        .testTarget(name: "WeirKernelTests", dependencies: ["WeirTestFixtures", "WeirModel", "WeirSema", "WeirIptables", "WeirNftables", "WeirNetlink", "WeirLab", "WeirSimulator", "WeirDriver"]),
    ],
    swiftLanguageModes: [.v6]
)
