/// Names for the authenticator models people meet most, by AAGUID, so a passkey reads as
/// "iCloud Keychain" rather than "ES256 passkey" until its owner names it. For display only:
/// an AAGUID is what the authenticator claims, not proof (attestation policy is elsewhere).
/// From the community list of passkey provider AAGUIDs (passkeydeveloper) and FIDO metadata.
public enum AuthenticatorModels {
    static let names: [String: String] = [
        "ea9b8d66-4d01-1d21-3ce4-b6b48cb575d4": "Google Password Manager",
        "adce0002-35bc-c60a-648b-0b25f1f05503": "Chrome on Mac",
        "08987058-cadc-4b81-b6e1-30de50dcbe96": "Windows Hello",
        "9ddd1817-af5a-4672-a2b9-3e3dd95000a9": "Windows Hello",
        "fbfc3007-154e-4ecc-8c0b-6e020557d7bd": "iCloud Keychain",
        "bada5566-a7aa-401f-bd96-45619a55120d": "1Password",
        "d548826e-79b4-db40-a3d8-11116f7e8349": "Bitwarden",
        "531126d6-e717-415c-9320-3d9aa6981239": "Dashlane",
        "53414d53-554e-4700-0000-000000000000": "Samsung Pass",
        "cb69481e-8ff7-4039-93ec-0a2729a154a8": "YubiKey 5",
        "ee882879-721c-4913-9775-3dfcce97072a": "YubiKey 5 NFC",
    ]

    /// The AAGUID in its usual text form (lower-case, dashed), or nil unless 16 bytes.
    public static func text(_ aaguid: [UInt8]) -> String? {
        guard aaguid.count == 16 else { return nil }
        let hex = aaguid.map { byte -> String in
            let digits = Array("0123456789abcdef")
            return String([digits[Int(byte >> 4)], digits[Int(byte & 0x0F)]])
        }.joined()
        let h = Array(hex)
        return [h[0..<8], h[8..<12], h[12..<16], h[16..<20], h[20..<32]].map { String($0) }.joined(separator: "-")
    }

    /// The model's name, when known; nil for unknown models and for the all-zero AAGUID that
    /// authenticators send when they do not say.
    public static func name(aaguid: [UInt8]) -> String? {
        guard let text = Self.text(aaguid) else { return nil }
        return Self.names[text]
    }
}
