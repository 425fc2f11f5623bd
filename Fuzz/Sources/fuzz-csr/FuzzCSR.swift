import Foundation
import GatehouseCore
import GatehousePKI

// libFuzzer entry points (see fuzz-config for how they are wired).

@_silgen_name("LLVMFuzzerRunDriver")
func LLVMFuzzerRunDriver(
    _ argc: UnsafeMutablePointer<Int32>,
    _ argv: UnsafeMutablePointer<UnsafeMutablePointer<UnsafeMutablePointer<CChar>?>?>,
    _ callback: @convention(c) (UnsafePointer<UInt8>?, Int) -> Int32
) -> Int32

/// Feeds arbitrary bytes to what the X.509 authority parses from outside: certificate signing
/// requests (DER and PEM), PEM certificate bundles (the intermediate import), PKCS#8 keys, and
/// SPIFFE IDs. A request that parses must re-encode to the bytes that were signed.
@_cdecl("LLVMFuzzerTestOneInput")
public func fuzzCSR(_ data: UnsafePointer<UInt8>?, _ size: Int) -> Int32 {
    let bytes = data.map { Array(UnsafeBufferPointer(start: $0, count: size)) } ?? []
    if let request = try? SigningRequest(pemOrDER: bytes) {
        if request.dnsNames.count + request.ipAddresses.count > SigningRequest.maxNames { fatalError("more names than allowed") }
        if let id = request.spiffeID, (try? SPIFFEID.split(id)) == nil { fatalError("an invalid SPIFFE ID passed") }
    }
    _ = try? SigningRequest(der: bytes)
    let text = String(decoding: bytes, as: UTF8.self)
    _ = try? PEM.decodeAll(text, label: "CERTIFICATE")
    _ = try? SigningKey(pkcs8PEM: text)
    _ = try? SPIFFEID.split(text)
    return 0
}

@main
enum FuzzCSR {
    static func main() {
        var argc = CommandLine.argc
        var argv: UnsafeMutablePointer<UnsafeMutablePointer<CChar>?>? = CommandLine.unsafeArgv
        exit(LLVMFuzzerRunDriver(&argc, &argv, { fuzzCSR($0, $1) }))
    }
}
