import Foundation
import GatehouseCore

// libFuzzer entry points. `LLVMFuzzerRunDriver` comes from the fuzzer runtime that
// `-sanitize=fuzzer` links; `LLVMFuzzerTestOneInput` is called once per generated input.

@_silgen_name("LLVMFuzzerRunDriver")
func LLVMFuzzerRunDriver(
    _ argc: UnsafeMutablePointer<Int32>,
    _ argv: UnsafeMutablePointer<UnsafeMutablePointer<UnsafeMutablePointer<CChar>?>?>,
    _ callback: @convention(c) (UnsafePointer<UInt8>?, Int) -> Int32
) -> Int32

/// Parses arbitrary bytes as a configuration file and, when they parse, resolves them into
/// server settings: both must return or throw, never crash, hang or allocate without bound.
@_cdecl("LLVMFuzzerTestOneInput")
public func fuzzConfig(_ data: UnsafePointer<UInt8>?, _ size: Int) -> Int32 {
    let bytes = data.map { Array(UnsafeBufferPointer(start: $0, count: size)) } ?? []
    if let document = try? ConfigParser(fileName: "fuzz.toml").parse(bytes) {
        _ = try? ServerSettings.resolve(overrides: .init(), file: document, fileName: "fuzz.toml")
    }
    return 0
}

@main
enum FuzzConfig {
    static func main() {
        var argc = CommandLine.argc
        var argv: UnsafeMutablePointer<UnsafeMutablePointer<CChar>?>? = CommandLine.unsafeArgv
        exit(LLVMFuzzerRunDriver(&argc, &argv, { fuzzConfig($0, $1) }))
    }
}
