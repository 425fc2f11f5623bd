import GatehouseCore
import GatehouseHTTP
import Testing

@Suite("Client address behind proxies")
struct ClientAddressTests {
    let proxies = [try! IPPrefix(parsing: "10.0.0.0/8"), try! IPPrefix(parsing: "fd00::/8")]

    static let cases: [(String, [String], String)] = [
        // peer, X-Forwarded-For headers, client address
        ("203.0.113.5", ["198.51.100.1"], "203.0.113.5"),  // not from a proxy: the header is ignored
        ("10.0.0.2", ["198.51.100.1"], "198.51.100.1"),  // one trusted proxy
        ("10.0.0.2", ["6.6.6.6, 198.51.100.1"], "198.51.100.1"),  // a client-forged hop to the left is skipped
        ("10.0.0.2", ["198.51.100.1, 10.0.0.7"], "198.51.100.1"),  // two proxies
        ("10.0.0.2", ["198.51.100.1", "10.0.0.7"], "198.51.100.1"),  // repeated headers are one list
        ("10.0.0.2", ["10.0.0.9, 10.0.0.7"], "10.0.0.9"),  // all proxies: the left-most
        ("10.0.0.2", ["not-an-ip"], "10.0.0.2"),  // malformed: not believed
        ("10.0.0.2", ["198.51.100.0/24"], "10.0.0.2"),  // a prefix is not an address
        ("10.0.0.2", [], "10.0.0.2"),
        ("fd00::1", ["2001:db8::5"], "2001:db8::5"),
    ]

    @Test(arguments: cases)
    func resolves(peer: String, headers: [String], expected: String) {
        #expect(GatehouseRequestContext.clientAddress(peer: peer, forwardedFor: headers, trusted: self.proxies) == expected)
    }

    @Test func withoutTrustedProxiesTheHeaderNeverCounts() {
        #expect(GatehouseRequestContext.clientAddress(peer: "10.0.0.2", forwardedFor: ["198.51.100.1"], trusted: []) == "10.0.0.2")
        let huge = [String(repeating: "1.2.3.4, ", count: 600)]
        #expect(GatehouseRequestContext.clientAddress(peer: "10.0.0.2", forwardedFor: huge, trusted: self.proxies) == "10.0.0.2")
    }
}
