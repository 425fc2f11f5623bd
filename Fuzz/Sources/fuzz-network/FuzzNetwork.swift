import Foundation
import GatehouseCore
import GatehouseHostNetwork

// libFuzzer entry points (see fuzz-config for how they are wired).

@_silgen_name("LLVMFuzzerRunDriver")
func LLVMFuzzerRunDriver(
    _ argc: UnsafeMutablePointer<Int32>,
    _ argv: UnsafeMutablePointer<UnsafeMutablePointer<UnsafeMutablePointer<CChar>?>?>,
    _ callback: @convention(c) (UnsafePointer<UInt8>?, Int) -> Int32
) -> Int32

/// Feeds arbitrary bytes to what an agent and `gatehouse wg up` take from the server: a host's
/// network configuration and a device's (JSON), through the checks, into the nftables and
/// WireGuard texts. Whatever passes the checks must render to texts made only of the lines the
/// renderers write: no input may add a line (`PostUp = ...`, `flush ruleset`).
@_cdecl("LLVMFuzzerTestOneInput")
public func fuzzNetwork(_ data: UnsafePointer<UInt8>?, _ size: Int) -> Int32 {
    let bytes = Data(data.map { Array(UnsafeBufferPointer(start: $0, count: size)) } ?? [])
    let wgLines = [
        "[Interface]", "[Peer]", "# host:", "# device:", "# ", "PrivateKey = K", "ListenPort = 51820", "PublicKey = ", "AllowedIPs = ", "Endpoint = ",
        "PersistentKeepalive = ", "Address = ",
    ]
    func checkWG(_ text: String) {
        for line in text.split(separator: "\n", omittingEmptySubsequences: true) where !wgLines.contains(where: { line.hasPrefix($0) }) {
            fatalError("a WireGuard file line nobody writes: \(line.prefix(80))")
        }
    }
    if let config = try? JSONDecoder().decode(HostNetworkConfig.self, from: bytes), let plan = try? HostNetworkPlan(config) {
        let (text, state) = NftablesRuleset.full(interface: "wg0", mesh: plan.meshPrefix, allow: config.allow)
        let statements = ["table inet gatehouse", "delete table inet gatehouse", "add element inet gatehouse ", "  ", "}"]
        for line in text.split(separator: "\n", omittingEmptySubsequences: true) where !statements.contains(where: { line.hasPrefix($0) }) {
            fatalError("an nftables line nobody writes: \(line.prefix(80))")
        }
        if NftablesRuleset.update(from: state, to: config.allow).text != nil { fatalError("an unchanged allow list produced an update") }
        _ = NftablesRuleset.update(from: state, to: [])
        checkWG(WireGuardConfigFile.agent(privateKey: "K", listenPort: 51820, peers: config.peers))
    }
    let iso = JSONDecoder()
    iso.dateDecodingStrategy = .iso8601  // as the CLI reads the server's answer
    if let device = try? iso.decode(DeviceNetworkConfig.self, from: bytes), (try? HostNetworkPlan.checkDevice(device)) != nil {
        checkWG(WireGuardConfigFile.device(privateKey: "K", address: device.device.address + "/128", peers: device.peers))
    }
    let text = String(decoding: bytes, as: UTF8.self)
    _ = try? WireGuardKey(base64: text)
    _ = NetworkEndpoint.isValid(text)
    return 0
}

@main
enum FuzzNetwork {
    static func main() {
        var argc = CommandLine.argc
        var argv: UnsafeMutablePointer<UnsafeMutablePointer<CChar>?>? = CommandLine.unsafeArgv
        exit(LLVMFuzzerRunDriver(&argc, &argv, { fuzzNetwork($0, $1) }))
    }
}
