/// The signature algorithms Gatehouse issues and accepts. `none`, the HMAC family and RSA are
/// absent on purpose: a token naming them is refused before any key is looked at.
public enum JWSAlgorithm: String, Sendable, Hashable, CaseIterable, Codable {
    case es256 = "ES256"
    case edDSA = "EdDSA"
}
