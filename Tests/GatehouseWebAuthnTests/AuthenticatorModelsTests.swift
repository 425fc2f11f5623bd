import GatehouseWebAuthn
import Testing

@Suite("Authenticator models")
struct AuthenticatorModelsTests {
    @Test("known AAGUIDs are named; unknown, all-zero and malformed ones are not")
    func names() {
        let icloud: [UInt8] = [0xfb, 0xfc, 0x30, 0x07, 0x15, 0x4e, 0x4e, 0xcc, 0x8c, 0x0b, 0x6e, 0x02, 0x05, 0x57, 0xd7, 0xbd]
        #expect(AuthenticatorModels.text(icloud) == "fbfc3007-154e-4ecc-8c0b-6e020557d7bd")
        #expect(AuthenticatorModels.name(aaguid: icloud) == "iCloud Keychain")
        #expect(AuthenticatorModels.name(aaguid: [UInt8](repeating: 0, count: 16)) == nil)
        #expect(AuthenticatorModels.name(aaguid: [1, 2, 3]) == nil && AuthenticatorModels.text([]) == nil)
    }
}
