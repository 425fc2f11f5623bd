import Foundation
import GatehouseCore
import GatehousePolicy

// libFuzzer entry points (see fuzz-config for how they are wired).

@_silgen_name("LLVMFuzzerRunDriver")
func LLVMFuzzerRunDriver(
    _ argc: UnsafeMutablePointer<Int32>,
    _ argv: UnsafeMutablePointer<UnsafeMutablePointer<UnsafeMutablePointer<CChar>?>?>,
    _ callback: @convention(c) (UnsafePointer<UInt8>?, Int) -> Int32
) -> Int32

let now = Date(timeIntervalSince1970: 1_800_000_000)

/// Parses and compiles arbitrary bytes as a policy; when they compile, runs everything a policy
/// feeds: its tests, every output, explain and a spread of requests. Each step must return,
/// never crash, hang or allocate without bound.
@_cdecl("LLVMFuzzerTestOneInput")
public func fuzzPolicy(_ data: UnsafePointer<UInt8>?, _ size: Int) -> Int32 {
    let bytes = data.map { Array(UnsafeBufferPointer(start: $0, count: size)) } ?? []
    guard let text = String(validating: bytes, as: UTF8.self),
        let policy = try? PolicyCompiler(fileName: "fuzz.policy").compile(text)
    else { return 0 }
    _ = policy.runTests(now: now)
    _ = policy.accessTable()
    _ = PolicyDiff(from: nil, to: policy)
    let users = Array(Set(policy.definitions.groups.flatMap(\.members))).prefix(4) + ["nobody"]
    let hosts = policy.definitions.hosts.prefix(4)
    for user in users {
        let subject = policy.subject(user: user, directoryGroups: policy.definitions.groups.prefix(2).map(\.name), now: now)
        let context = PolicyContext(now: now, sourceAddress: 0xFFFF_0A00_0001, lastStepUp: now)
        var requests: [PolicyRequest] = [
            .app(policy.definitions.apps.first?.name ?? "x"), .requestRole(policy.definitions.roles.first?.name ?? "r"),
            .certificate(spiffeID: "spiffe://corp.example/user/\(user)"), .reach(address: 0xFFFF_0A00_0001, port: 443, proto: .tcp),
        ]
        for h in hosts {
            requests.append(.ssh(login: "root", host: h.name))
            requests.append(.ssh(login: user, host: h.name))
            if let a = h.addresses.first { requests.append(.reach(address: a.first, port: 22, proto: .tcp)) }
            _ = policy.sshLogins(subject: subject, host: h.name, context: context)
            _ = policy.networkAllowSet(node: h.name, members: [(subject, [IPPrefix(address: 0xFFFF_0A64_0001)])], at: now)
        }
        for r in requests {
            let decision = policy.evaluate(r, subject: subject, context: context)
            let explained = policy.explain(r, subject: subject, context: context)
            // The two paths must agree, or explain would mislead.
            if explained.decision != decision { fatalError("explain disagrees with evaluate for \(r)") }
        }
    }
    return 0
}

@main
enum FuzzPolicy {
    static func main() {
        var argc = CommandLine.argc
        var argv: UnsafeMutablePointer<UnsafeMutablePointer<CChar>?>? = CommandLine.unsafeArgv
        exit(LLVMFuzzerRunDriver(&argc, &argv, { fuzzPolicy($0, $1) }))
    }
}
