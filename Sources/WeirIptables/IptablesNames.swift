import WeirModel

/// Spellings iptables 1.8.9 uses for protocols, REJECT types, log levels and the like.
enum IptablesNames {
    /// The name `iptables-save` prints after `-p` for each protocol number: libxtables asks
    /// `getprotobynumber`, i.e. `/etc/protocols`. This is Debian netbase's table (first name per
    /// number); numbers without an entry are printed as numbers. 0 means "all" and is never printed.
    static let protocolNames: [UInt8: String] = [
        1: "icmp", 2: "igmp", 3: "ggp", 4: "ipencap", 5: "st", 6: "tcp", 8: "egp", 9: "igp", 12: "pup",
        17: "udp", 20: "hmp", 22: "xns-idp", 27: "rdp", 29: "iso-tp4", 33: "dccp", 36: "xtp", 37: "ddp",
        38: "idpr-cmtp", 41: "ipv6", 43: "ipv6-route", 44: "ipv6-frag", 45: "idrp", 46: "rsvp", 47: "gre",
        50: "esp", 51: "ah", 57: "skip", 58: "ipv6-icmp", 59: "ipv6-nonxt", 60: "ipv6-opts", 73: "rspf",
        81: "vmtp", 88: "eigrp", 89: "ospf", 93: "ax.25", 94: "ipip", 97: "etherip", 98: "encap", 103: "pim",
        108: "ipcomp", 112: "vrrp", 115: "l2tp", 124: "isis", 132: "sctp", 133: "fc", 135: "mobility-header",
        136: "udplite", 137: "mpls-in-ip", 138: "manet", 139: "hip", 140: "shim6", 141: "wesp", 142: "rohc",
        143: "ethernet",
    ]

    /// `-p` spellings, indexed by protocol number (bytes, so the printer can append them directly).
    static let protocolBytes: [[UInt8]] = (0...255).map { n in
        Array((protocolNames[UInt8(n)] ?? String(n)).utf8)
    }

    /// Names `-p` accepts (after lowercasing, as iptables does): netbase names and libxtables' own.
    static let protocolNumbers: [String: UInt8] = {
        var table: [String: UInt8] = [:]
        for (number, name) in protocolNames { table[name] = number }
        table["icmpv6"] = 58
        table["ipv6-mh"] = 135
        table["mh"] = 135
        return table
    }()

    /// Parses a `-p` argument: a number, `all` (0), or a name, case-insensitively.
    static func parseProtocol(_ text: String) -> UInt8? {
        let lower = text.lowercased()
        if let n = UInt8(lower), !lower.hasPrefix("+") { return n }
        if lower == "all" { return 0 }
        return protocolNumbers[lower]
    }

    /// REJECT `--reject-with` types per family: canonical name and alias (libipt_REJECT / libip6t_REJECT).
    static let rejectTypes: [Family: [(name: String, alias: String)]] = [
        .ipv4: [
            ("icmp-net-unreachable", "net-unreach"), ("icmp-host-unreachable", "host-unreach"),
            ("icmp-proto-unreachable", "proto-unreach"), ("icmp-port-unreachable", "port-unreach"),
            ("icmp-net-prohibited", "net-prohib"), ("icmp-host-prohibited", "host-prohib"),
            ("tcp-reset", "tcp-rst"), ("icmp-admin-prohibited", "admin-prohib"),
        ],
        .ipv6: [
            ("icmp6-no-route", "no-route"), ("icmp6-adm-prohibited", "adm-prohibited"),
            ("icmp6-addr-unreachable", "addr-unreach"), ("icmp6-port-unreachable", "port-unreach"),
            ("tcp-reset", "tcp-reset"), ("icmp6-policy-fail", "policy-fail"),
            ("icmp6-reject-route", "reject-route"),
        ],
    ]

    /// The REJECT type a family uses when none is given.
    static func defaultReject(_ family: Family) -> String {
        family == .ipv4 ? "icmp-port-unreachable" : "icmp6-port-unreachable"
    }

    /// The canonical spelling of a REJECT type (name or alias, any case), or nil when unknown.
    static func canonicalReject(_ text: String, family: Family) -> String? {
        let lower = text.lowercased()
        for entry in rejectTypes[family] ?? [] where entry.name == lower || entry.alias == lower {
            return entry.name
        }
        return nil
    }

    /// syslog level names `--log-level` accepts.
    static let logLevels: [String: UInt8] = [
        "emerg": 0, "panic": 0, "alert": 1, "crit": 2, "err": 3, "error": 3,
        "warning": 4, "warn": 4, "notice": 5, "info": 6, "debug": 7,
    ]

    /// The level LOG uses when none is given; `iptables-save` omits it.
    static let defaultLogLevel: UInt8 = 4
    /// Longest `--log-prefix` the kernel stores (30 bytes with the NUL).
    static let maxLogPrefix = 29
    /// Longest `--comment` (`XT_MAX_COMMENT_LEN` 256 with the NUL).
    static let maxComment = 255
    /// Longest interface name (`IFNAMSIZ` 16 with the NUL).
    static let maxInterface = 15
    /// Longest chain name (`XT_EXTENSION_MAXNAMELEN` 29 with the NUL).
    static let maxChainName = 28

    /// Address types the kernel's addrtype match refuses for IPv6 (`addrtype_mt_checkentry_v1`).
    static let addressTypesNotForIPv6: Set<AddressType> = [.broadcast, .blackhole, .prohibit, .throw, .nat, .xresolve]

    /// Targets the model has, by their iptables name.
    static let builtinTargets: Set<String> = [
        "ACCEPT", "DROP", "RETURN", "REJECT", "DNAT", "SNAT", "MASQUERADE", "LOG", "CHECKSUM",
    ]

    /// Other xtables targets, so that using one gets "not supported" rather than "unknown chain".
    static let otherTargets: Set<String> = [
        "AUDIT", "CLASSIFY", "CLUSTERIP", "CONNMARK", "CONNSECMARK", "CT", "DSCP", "ECN", "HL", "HMARK",
        "IDLETIMER", "LED", "MARK", "NETMAP", "NFLOG", "NFQUEUE", "NOTRACK", "QUEUE", "RATEEST", "REDIRECT",
        "SECMARK", "SET", "SYNPROXY", "TCPMSS", "TCPOPTSTRIP", "TEE", "TOS", "TPROXY", "TRACE", "TTL", "ULOG",
    ]
}
