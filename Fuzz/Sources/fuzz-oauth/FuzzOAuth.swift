import Foundation
import GatehouseCore
import GatehouseOIDC

// libFuzzer entry points (see fuzz-config for how they are wired).

@_silgen_name("LLVMFuzzerRunDriver")
func LLVMFuzzerRunDriver(
    _ argc: UnsafeMutablePointer<Int32>,
    _ argv: UnsafeMutablePointer<UnsafeMutablePointer<UnsafeMutablePointer<CChar>?>?>,
    _ callback: @convention(c) (UnsafePointer<UInt8>?, Int) -> Int32
) -> Int32

let client = OIDCClient(
    id: "grafana", name: "Grafana", kind: .confidential, redirectURIs: ["https://grafana.example/cb", "http://127.0.0.1/cli"],
    secretHash: ClientSecret.hash("s"), firstParty: false, createdAt: Date(timeIntervalSince1970: 0))
let signer = TokenSigner(key: SigningKey.generate(.p256, using: SeededRandomSource(seed: 1)))
let keys = [signer.kid: try! signer.jwk.verificationKey()]
let ticketKey = [UInt8](repeating: 7, count: 32)

/// Feeds arbitrary bytes to everything the OIDC endpoints parse from outside: query strings and
/// form bodies, the authorization request rules, client credentials (as a Basic header and a
/// form), compact JWS tokens, client-assertion claims, user codes and proxy tickets.
@_cdecl("LLVMFuzzerTestOneInput")
public func fuzzOAuth(_ data: UnsafePointer<UInt8>?, _ size: Int) -> Int32 {
    let bytes = data.map { Array(UnsafeBufferPointer(start: $0, count: size)) } ?? []
    let text = String(decoding: bytes, as: UTF8.self)
    if let form = try? FormParameters(parsing: bytes) {
        // Re-encoding what was parsed must parse back to the same parameters.
        let again = FormParameters.encode(form.values.sorted { $0.key < $1.key }.map { ($0.key, $0.value) })
        if (try? FormParameters(parsing: again)) != form { fatalError("form round trip changed the parameters") }
        _ = try? AuthorizationRequest.validate(form, client: client)
        _ = try? ClientCredentials.parse(authorization: nil, form: form)
        _ = try? Scope.parse(form["scope"])
    }
    _ = try? ClientCredentials.parse(authorization: "Basic " + Data(bytes).base64EncodedString(), form: FormParameters())
    _ = try? ClientCredentials.parse(authorization: text, form: FormParameters())
    if let verified = try? JWS.verify(text, keys: keys) { fatalError("a fuzzed token verified: \(verified.kid)") }
    _ = try? JSONDecoder().decode(ClientAssertionClaims.self, from: Data(bytes))
    if let set = try? JSONDecoder().decode(JWKSet.self, from: Data(bytes)) { _ = set.keys.map { try? $0.verificationKey() } }
    _ = UserCode.normalize(text)
    _ = ProxyTicket.verify(text, app: "wiki", key: ticketKey, now: Date(timeIntervalSince1970: 0))
    _ = OIDCClient.redirectURIProblem(text)
    _ = client.registeredRedirect(matching: text)
    return 0
}

@main
enum FuzzOAuth {
    static func main() {
        var argc = CommandLine.argc
        var argv: UnsafeMutablePointer<UnsafeMutablePointer<CChar>?>? = CommandLine.unsafeArgv
        exit(LLVMFuzzerRunDriver(&argc, &argv, { fuzzOAuth($0, $1) }))
    }
}
