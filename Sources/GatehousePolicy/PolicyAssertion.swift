public import GatehouseCore

/// One line of a policy's `tests` block, e.g. `alice can ssh root@web-1` or
/// `contractors cannot reach 10.0.5.0/24:5432`. A policy whose tests fail is never applied.
///
///     SUBJECT (can|cannot) ssh LOGIN@HOST
///     SUBJECT (can|cannot) reach (TARGET:PORT[/PROTO] | TARGET port PORT[/PROTO])
///     SUBJECT (can|cannot) use APP
///     SUBJECT (can|cannot) request ROLE
///     SUBJECT (can|cannot) obtain SPIFFE-ID
///     ... [from ADDRESS] [without step-up]
///
/// SUBJECT is a user, a group or a role (a synthetic member of just that group or role), or
/// `host:NAME`. TARGET is an address, a CIDR prefix, or a host, network or service name. `can`
/// over a prefix means every address in it; `cannot` means none.
public struct PolicyAssertion: Sendable, Equatable {
    public enum Action: Sendable, Equatable {
        case ssh(login: String, host: String)
        /// Either a literal prefix or a name to resolve against hosts, networks and services.
        case reach(target: String, ports: [PortRange])
        case use(app: String)
        case request(role: String)
        case obtain(spiffeID: String)
    }

    public var subject: String
    public var expectAllowed: Bool
    public var action: Action
    public var sourceAddress: IPPrefix?
    /// Evaluated as if the subject had just completed a passkey check, unless `without step-up`.
    public var freshStepUp: Bool
    public var text: String
    public var location: PolicyLocation

    /// Parses the words of one `tests` line.
    public static func parse(_ words: [String], at location: PolicyLocation) -> Result<PolicyAssertion, PolicyError> {
        let text = words.joined(separator: " ")
        func fail(_ message: String) -> Result<PolicyAssertion, PolicyError> {
            .failure(PolicyError(location, "test '\(text)': \(message)"))
        }
        guard words.count >= 4 else {
            return fail("expected SUBJECT can|cannot ssh|reach|use|request|obtain OBJECT")
        }
        let expect: Bool
        switch words[1] {
        case "can": expect = true
        case "cannot": expect = false
        default: return fail("second word must be 'can' or 'cannot'")
        }
        var rest = Array(words[4...])
        var source: IPPrefix? = nil
        var fresh = true
        var objectWords = [words[3]]
        while !rest.isEmpty {
            switch rest[0] {
            case "from" where rest.count >= 2:
                guard let p = try? IPPrefix(parsing: rest[1]), p.isSingleAddress else { return fail("'from' needs one IP address") }
                source = p
                rest.removeFirst(2)
            case "without" where rest.count >= 2 && rest[1] == "step-up":
                fresh = false
                rest.removeFirst(2)
            case "port" where rest.count >= 2 && words[2] == "reach" && objectWords.count == 1:
                objectWords += ["port", rest[1]]
                rest.removeFirst(2)
            default:
                return fail("unexpected '\(rest[0])'; a test may end with 'from ADDRESS' and 'without step-up'")
            }
        }
        let object = words[3]
        let action: Action
        switch words[2] {
        case "ssh":
            let parts = object.split(separator: "@", omittingEmptySubsequences: false)
            guard parts.count == 2, !parts[0].isEmpty, !parts[1].isEmpty else { return fail("expected LOGIN@HOST") }
            action = .ssh(login: String(parts[0]), host: String(parts[1]))
        case "reach":
            let target: String
            let portText: String
            if objectWords.count == 3 {
                target = object
                portText = objectWords[2]
            } else if let colon = object.lastIndex(of: ":"), !object.contains("::"), object.filter({ $0 == ":" }).count == 1 {
                target = String(object[..<colon])
                portText = String(object[object.index(after: colon)...])
            } else {
                return fail("expected TARGET:PORT, or 'TARGET port PORT' for IPv6")
            }
            guard let ports = try? PortRange.parse(portText) else { return fail("'\(portText)' is not a port, range or 'icmp'") }
            action = .reach(target: target, ports: ports)
        case "use": action = .use(app: object)
        case "request": action = .request(role: object)
        case "obtain": action = .obtain(spiffeID: object)
        default: return fail("unknown action '\(words[2])'; expected ssh, reach, use, request or obtain")
        }
        return .success(
            PolicyAssertion(
                subject: words[0], expectAllowed: expect, action: action, sourceAddress: source,
                freshStepUp: fresh, text: text, location: location
            ))
    }
}
