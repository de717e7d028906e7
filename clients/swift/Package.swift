// swift-tools-version:6.2
//
// Tinyvex's Swift client: the toolchain alone, no other package.  Swift 6
// language mode (strict concurrency), every warning an error.
import PackageDescription

let strict: [SwiftSetting] = [
	.treatAllWarnings(as: .error),
]

let package = Package(
	name: "Tinyvex",
	platforms: [.macOS(.v13), .iOS(.v16)],
	products: [
		.library(name: "Tinyvex", targets: ["Tinyvex"]),
	],
	targets: [
		.target(name: "Tinyvex", swiftSettings: strict),
		.testTarget(name: "TinyvexTests", dependencies: ["Tinyvex"],
		    swiftSettings: strict),
	],
	swiftLanguageModes: [.v6]
)
