import WeirModel
import WeirNftables

// How program values map to kernel numbers (and back).

extension Hook {
    /// `NF_INET_PRE_ROUTING` … `NF_INET_POST_ROUTING`.
    var hookNumber: UInt32 {
        switch self {
        case .prerouting: NF.hookPrerouting
        case .input: NF.hookInput
        case .forward: NF.hookForward
        case .output: NF.hookOutput
        case .postrouting: NF.hookPostrouting
        }
    }

    init?(hookNumber: UInt32) {
        guard let hook = Hook.allCases.first(where: { $0.hookNumber == hookNumber }) else { return nil }
        self = hook
    }

    /// libnftnl's spelling (`forward`).
    var nftName: String { rawValue.lowercased() }
}

extension ChainPolicy {
    /// `NF_ACCEPT` / `NF_DROP`.
    var verdictNumber: UInt32 { self == .accept ? NF.accept : NF.drop }

    init?(verdictNumber: UInt32) {
        switch verdictNumber {
        case NF.accept: self = .accept
        case NF.drop: self = .drop
        default: return nil
        }
    }
}

/// The names nft and libnftnl use for NFPROTO_* families.
func familyName(_ nfproto: UInt32) -> String {
    switch nfproto {
    case NF.familyIPv4: "ip"
    case NF.familyIPv6: "ip6"
    case NF.familyInet: "inet"
    case NF.familyARP: "arp"
    case NF.familyBridge: "bridge"
    case NF.familyNetdev: "netdev"
    default: "family \(nfproto)"
    }
}
