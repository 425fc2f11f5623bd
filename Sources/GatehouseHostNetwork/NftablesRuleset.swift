import Foundation
public import GatehouseCore

/// The host's default-deny packet filter, as nftables text for one `nft -f` transaction.
///
/// One table, `inet gatehouse`, guards what arrives on the mesh interface, for the host itself
/// (input) and for what a gateway forwards (forward). The allow list lives in a map and two
/// sets, so the ruleset has the same handful of rules whether it admits ten flows or a million:
///
/// - `source_class`: source address → class (sources that may reach exactly the same things);
/// - `allow`: `class . destination . protocol . port` (destination prefixes, port ranges);
/// - `allow_icmp`: `class . destination` for ICMPv6.
///
/// A packet's class travels in its mark between the two lookups: the mark is zeroed first, so
/// a source outside the map (class 0, which no element has) matches nothing. A flow that passes
/// has the permissions' generation stamped into its conntrack mark, and its later packets pass on
/// that alone; any update that withdraws something rewrites the two mesh chains with a new
/// generation in the same transaction, so established connections are judged again at their next
/// packet and stop if they lost their permission. Replies (and related ICMP errors) pass
/// by connection tracking. Everything else from the interface is counted (`dropped_input`,
/// `dropped_forward`) and dropped. Other interfaces are not judged, except that nothing arriving
/// there may claim a mesh source address or start a flow to a mesh address: a LAN neighbour
/// cannot reach a host's mesh address, or a person's device, around the tunnel.
///
/// Class numbers are the agent's own: ``NftablesRuleset/State`` keeps them stable between
/// updates, so an update adds and deletes only the elements that changed.
public enum NftablesRuleset {
    public static let table = "gatehouse"

    /// What is loaded: each class's rules by number, and each source's class.
    public struct State: Sendable, Equatable {
        public var classes: [[NetworkAllowRule]: UInt32] = [:]
        public var sources: [String: UInt32] = [:]
        var nextClass: UInt32 = 1
        var free: [UInt32] = []
        /// The permissions' generation, written into the mesh chains and stamped into the
        /// conntrack mark of every flow judged under it. High bit set, so it never equals a class number.
        public internal(set) var generation: UInt32

        public init(generation: UInt32 = 0x8000_0001) { self.generation = generation | 0x8000_0000 }

        public var elementCount: Int { self.sources.count + self.classes.keys.reduce(0) { $0 + $1.count } }

        mutating func number() -> UInt32 {
            if let n = self.free.popLast() { return n }
            defer { self.nextClass += 1 }
            return self.nextClass
        }
    }

    /// The whole table. It starts by creating and deleting the table, so loading it replaces the
    /// previous one atomically (nftables applies a file as one transaction).
    public static func full(interface: String, mesh: IPPrefix, allow: [NetworkAllowClass], generation: UInt32 = 0x8000_0001) -> (
        text: String, state: State
    ) {
        let start = State(generation: generation)
        var out = """
            table inet \(Self.table) {}
            delete table inet \(Self.table)
            table inet \(Self.table) {
              counter accepted {}
              counter dropped_input {}
              counter dropped_forward {}
              map source_class {
                type ipv6_addr : mark
              }
              set allow {
                type mark . ipv6_addr . inet_proto . inet_service
                flags interval
              }
              set allow_icmp {
                type mark . ipv6_addr
                flags interval
              }

            """
        // The hook chains send the mesh interface's packets to their own chain with one lookup,
        // and settle everything else in a rule or two: on a host most packets are either the
        // mesh's (inner) or the tunnel's own UDP (outer, IPv4 or IPv6 outside the mesh prefix).
        for chain in Self.hookChains {
            out += """
                  chain \(chain) {
                    type filter hook \(chain) priority filter - 5; policy accept;
                    iifname vmap { "\(interface)" : goto \(chain)_mesh, "lo" : accept }
                    meta nfproto ipv4 accept
                    ip6 saddr \(mesh) counter name dropped_\(chain) drop
                    ip6 daddr != \(mesh) accept
                    ct direction reply accept
                    ct state related accept
                    counter name dropped_\(chain) drop
                  }
                  chain \(chain)_mesh {
                \(Self.meshRules(chain, generation: start.generation).map { "    " + $0 + "\n" }.joined())  }

                """
        }
        out += "}\n"
        let (changes, state) = Self.changes(from: start, to: allow)
        return (out + changes, state)
    }

    static let hookChains = ["input", "forward"]

    /// What the mesh interface's packets meet. Flows judged under the current generation pass on
    /// their conntrack mark alone (one comparison, no lookups); a new flow is judged by its
    /// source's class and the allow sets, and stamped with the generation when it passes.
    static func meshRules(_ chain: String, generation: UInt32) -> [String] {
        let gen = String(format: "0x%08x", generation)
        return [
            "ct mark \(gen) accept",
            "ct direction reply accept",
            "ct state related accept",
            "ct state invalid counter name dropped_\(chain) drop",
            "meta mark set 0x0",
            "meta mark set ip6 saddr map @source_class",
            "meta l4proto { tcp, udp } meta mark . ip6 daddr . meta l4proto . th dport @allow counter name accepted ct mark set \(gen) accept",
            "meta l4proto ipv6-icmp meta mark . ip6 daddr @allow_icmp counter name accepted ct mark set \(gen) accept",
            "counter name dropped_\(chain) drop",
        ]
    }

    /// Element additions and deletions that turn the loaded `state` into `allow`; nil text when
    /// nothing changes.
    public static func update(from state: State, to allow: [NetworkAllowClass]) -> (text: String?, state: State) {
        let (text, next) = Self.changes(from: state, to: allow)
        return (text.isEmpty ? nil : text, next)
    }

    static func changes(from old: State, to allow: [NetworkAllowClass]) -> (String, State) {
        var state = old
        var deletes: [(String, [String])] = []
        var adds: [(String, [String])] = []
        // Classes: keep the numbers of rule lists still in use, retire the rest, number new ones.
        let wanted = Set(allow.map(\.rules))
        // Numbers retired now are handed out again only from the next update on: one transaction
        // never deletes and re-adds the same element.
        var retired: [UInt32] = []
        for (rules, n) in old.classes.sorted(by: { $0.value < $1.value }) where !wanted.contains(rules) {
            deletes += Self.ruleElements(n, rules)
            state.classes[rules] = nil
            retired.append(n)
        }
        var sources: [String: UInt32] = [:]
        for c in allow {
            let n: UInt32
            if let known = state.classes[c.rules] {
                n = known
            } else {
                n = state.number()
                state.classes[c.rules] = n
                adds += Self.ruleElements(n, c.rules)
            }
            for s in c.sources { sources[s] = n }
        }
        // Sources: delete those gone or moved, add those new or moved.
        var removed: [String] = []
        var added: [String] = []
        for (s, n) in old.sources.sorted(by: { $0.key < $1.key }) where sources[s] != n { removed.append(s) }
        for (s, n) in sources.sorted(by: { $0.key < $1.key }) where old.sources[s] != n { added.append("\(s) : \(n)") }
        state.sources = sources
        state.free += retired
        var out = Self.statements("delete", set: "source_class", removed)
        for (set, items) in deletes { out += Self.statements("delete", set: set, items) }
        for (set, items) in adds { out += Self.statements("add", set: set, items) }
        out += Self.statements("add", set: "source_class", added)
        // Anything withdrawn: a new generation, in the same transaction, so every established
        // flow is judged again at its next packet (and stopped if it lost its permission).
        if !removed.isEmpty || !deletes.allSatisfy({ $0.1.isEmpty }), !old.sources.isEmpty || !old.classes.isEmpty {
            state.generation = 0x8000_0000 | ((old.generation &+ 1) & 0x7FFF_FFFF)
            for chain in Self.hookChains {
                out +=
                    "flush chain inet \(Self.table) \(chain)_mesh\n"
                    + Self.meshRules(chain, generation: state.generation).map { "add rule inet \(Self.table) \(chain)_mesh \($0)\n" }.joined()
            }
        }
        return (out, state)
    }

    /// Elements are always written with an explicit prefix length and port range: nftables
    /// 1.0.6 cannot delete an element of a concatenated interval set that is written with single
    /// values only (it answers "No such file or directory"), though it adds it.
    static func ruleElements(_ n: UInt32, _ rules: [NetworkAllowRule]) -> [(String, [String])] {
        var ports: [String] = []
        var icmp: [String] = []
        for r in rules {
            let destination = r.destination.contains("/") ? r.destination : r.destination + "/128"
            if r.proto == "icmp" {
                icmp.append("\(n) . \(destination)")
            } else {
                ports.append("\(n) . \(destination) . \(r.proto) . \(r.low)-\(r.high)")
            }
        }
        return [("allow", ports), ("allow_icmp", icmp)]
    }

    /// `add element ...` statements, a few thousand elements per statement.
    static func statements(_ verb: String, set: String, _ items: [String]) -> String {
        var out = ""
        var i = 0
        while i < items.count {
            let chunk = items[i..<min(i + 4096, items.count)]
            out += "\(verb) element inet \(Self.table) \(set) { " + chunk.joined(separator: ", ") + " }\n"
            i += chunk.count
        }
        return out
    }
}

/// WireGuard configuration text: the `wg syncconf` form for agents (no addresses) and the
/// `wg-quick` form for people's devices.
public enum WireGuardConfigFile {
    public static func agent(privateKey: String, listenPort: Int, peers: [WireGuardPeer]) -> String {
        "[Interface]\nPrivateKey = \(privateKey)\nListenPort = \(listenPort)\n" + peers.map(Self.peer).joined()
    }

    public static func device(privateKey: String, address: String, peers: [WireGuardPeer]) -> String {
        "[Interface]\nPrivateKey = \(privateKey)\nAddress = \(address)\n" + peers.map(Self.peer).joined()
    }

    static func peer(_ p: WireGuardPeer) -> String {
        var out = "\n[Peer]\n# \(p.label)\nPublicKey = \(p.publicKey)\nAllowedIPs = \(p.allowedIPs.joined(separator: ", "))\n"
        if let e = p.endpoint { out += "Endpoint = \(e)\n" }
        if let k = p.persistentKeepalive { out += "PersistentKeepalive = \(k)\n" }
        return out
    }
}
