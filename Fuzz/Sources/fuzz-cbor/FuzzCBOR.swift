import Foundation
import GatehouseWebAuthn

// libFuzzer entry points (see fuzz-config for how they are wired).

@_silgen_name("LLVMFuzzerRunDriver")
func LLVMFuzzerRunDriver(
    _ argc: UnsafeMutablePointer<Int32>,
    _ argv: UnsafeMutablePointer<UnsafeMutablePointer<UnsafeMutablePointer<CChar>?>?>,
    _ callback: @convention(c) (UnsafePointer<UInt8>?, Int) -> Int32
) -> Int32

let rp = RelyingParty(id: "localhost", name: "fuzz", origins: ["http://localhost:8080"])

/// Feeds arbitrary bytes to everything that parses what an authenticator sends: the CBOR
/// decoder (and the encoder must reproduce what it decoded, for canonical input), COSE keys,
/// authenticator data, and a registration verification with the bytes as attestationObject.
@_cdecl("LLVMFuzzerTestOneInput")
public func fuzzCBOR(_ data: UnsafePointer<UInt8>?, _ size: Int) -> Int32 {
    let bytes = data.map { Array(UnsafeBufferPointer(start: $0, count: size)) } ?? []
    if let value = try? CBORDecoder().decode(bytes) {
        // Decoding what we encoded must give the same value back.
        let again = CBOREncoder.encode(value)
        if (try? CBORDecoder().decode(again)) != value { fatalError("CBOR round trip changed a value") }
        _ = try? COSEKey(value, encoded: bytes)
    }
    _ = try? AuthenticatorData(bytes)
    let b64 = Data(bytes).base64EncodedString().replacingOccurrences(of: "+", with: "-").replacingOccurrences(of: "/", with: "_")
        .replacingOccurrences(of: "=", with: "")
    let json =
        "{\"id\":\"AAEC\",\"rawId\":\"AAEC\",\"type\":\"public-key\",\"response\":{\"clientDataJSON\":\"e30\",\"attestationObject\":\"\(b64)\"}}"
    if let response = try? RegistrationResponse(json: Array(json.utf8)) {
        _ = try? rp.verifyRegistration(response, challenge: [1, 2, 3])
    }
    return 0
}

@main
enum FuzzCBOR {
    static func main() {
        var argc = CommandLine.argc
        var argv: UnsafeMutablePointer<UnsafeMutablePointer<CChar>?>? = CommandLine.unsafeArgv
        exit(LLVMFuzzerRunDriver(&argc, &argv, { fuzzCBOR($0, $1) }))
    }
}
