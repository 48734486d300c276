import WeirModel

/// How Weir lays a model `Ruleset` out in nf_tables. Every part of the nftables backend
/// (`NftLowering`, `NftLifting`, `NftTextPrinter`, and the netlink writer) follows it.
///
/// # Tables
///
/// Weir writes its **own** tables and never touches iptables-nft's `ip filter`, `ip nat`, …
/// (native expressions in those tables break `iptables-nft-save`; see the netlink note §2.1).
/// The model table of family F named T becomes the nft table `F weir-T` — `ip weir-filter`,
/// `ip weir-nat`, `ip6 weir-filter`, `ip weir-mangle`, `ip weir-raw` — with the model's chain
/// names unchanged (`INPUT`, `DOCKER`, `DOCKER-ISOLATION-STAGE-1`, …). Reading back, `weir-T`
/// lifts to `T`, and a plain `T` (an iptables-nft table) lifts to `T` as well.
///
/// # Base chains
///
/// A model base chain keeps its hook, priority and policy. Its nft type is `nat` in the nat
/// table, `route` for the mangle table's OUTPUT chain (so a changed mark re-routes, as
/// iptables' mangle OUTPUT does), and `filter` everywhere else. An x_tables table is nothing
/// but base chains at fixed priorities (`XtablesLayout`), and nf_tables runs every base chain
/// of a hook in priority order, so this reproduces the model's semantics exactly — including
/// that an `accept` ends only its own base chain, while a `drop` is final.
///
/// # Rules
///
/// One model rule is one nft rule; its expressions follow the model's (canonical) match order
/// — addresses, interfaces, protocol, ports, then conntrack state and address types in the
/// order given — and end with the target's statement. The `meta l4proto` compare therefore
/// always precedes the port loads that depend on it. Comments live in the rule's user data
/// (`NftRule.comment`), never as an expression. Weir adds no counters.
///
/// **Set groups** are the exception: a run of at least four consecutive rules that differ only
/// in exact addresses and protocol/destination-port pairs, with pairwise distinct values
/// (`NftSetGroup` — Docker's per-port DNAT, ACCEPT and hairpin MASQUERADE rules), is one nft
/// rule: the shared matches, the key fields loaded into consecutive registers from `reg 1` on
/// (each padded to 4 bytes), a `lookup` into an anonymous constant set of the table
/// (`__set0`, `__set1`, …; flags anonymous|constant), and the shared statement — or, when the
/// rules DNAT to their own destinations, a `lookup` into an anonymous DNAT map (`__map0`, …;
/// data `address . port`) that loads the destination into `reg 1` (and the port into the
/// register after the address) for `nat dnat`. This is the bytecode nft writes for
/// `ip daddr . meta l4proto . th dport { … } accept` and
/// `dnat ip to meta l4proto . th dport map { … }`. It means the same as the rules because a
/// packet matches at most one of them; the kernel loads one set element for a fraction of
/// the cost of one rule, and looks the key up in a hash instead of walking the rules.
///
/// Native expressions only (no xt compat blobs):
///
/// | model | nf_tables |
/// |---|---|
/// | `-i`/`-o` exact | `meta iifname/oifname` + `cmp eq/neq` of 16 NUL-padded bytes |
/// | `-i eth+` | the same with the prefix bytes only, no NUL; a bare `+` needs nothing |
/// | `-s`/`-d` prefix | `payload` network header (IPv4 12/16, IPv6 8/24): the prefix's whole bytes when byte-aligned, else the full address + `bitwise` mask; `/0` needs nothing |
/// | `-p` | `meta l4proto` + `cmp` (1 byte) |
/// | ports | `payload` transport header + 0 (sport) / + 2 (dport), 2 bytes big-endian; one port `cmp`, a range `range eq/neq` |
/// | `--ctstate` set | `ct state` + `bitwise` & bits + `cmp neq 0` (negated: `cmp eq 0`) |
/// | `addrtype` | `fib saddr/daddr type` + `cmp eq/neq` of the `RTN_*` value as a host-order u32 |
/// | ACCEPT, DROP, RETURN, jump, goto | `immediate` verdict |
/// | REJECT | `reject` (ICMP/ICMPv6 unreachable code, or `tcp reset`) |
/// | LOG | `log` with the prefix and always an explicit level (4 when the model says none), as the kernel reports it back |
/// | DNAT/SNAT | `immediate` address into reg 1, ports into reg 2 (and reg 3 for a range's end), `nat` with addr_min = addr_max = reg 1 and the proto registers, flags map-ips (+ proto-specified) — the shape the kernel reports back |
/// | MASQUERADE | `masq`, ports as immediates into reg 1 (and reg 2) with `MasqExpression.flags` |
/// | CHECKSUM | none: the rule is left out with a warning (Docker's nftables backend omits it too) |
///
/// Anything else is a located error, never silently dropped (`NftLowering`); the text printer
/// adds the names and strings nft's syntax cannot spell (`NftTextPrinter.unsupported`).
///
/// # Choices
///
/// * **Ranges**: a port range is `range eq/neq`, the form iptables-nft uses and the only one a
///   negated range has; nft 1.0.6 writes a positive range as `cmp gte` + `cmp lte` instead, and
///   `NftLifting` reads every form.
/// * **LOG level**: always sent, 4 when the model has none, because the kernel stores 4 and
///   reports it back either way; lifting turns 4 into `nil`. An empty prefix is no prefix.
/// * **REJECT**: `NftRejectKind` — IPv4 ICMP codes 0, 1, 2, 3 (default), 9, 10, 13; IPv6 codes
///   0, 1, 3, 4 (default), 5, 6; `tcp-reset` is `reject type tcp reset`. The default lifts to `nil`.
/// * **Comments** sit in the rule's user data, so a rule carries at most one and it lifts back
///   after the other matches.
/// * **Normal form** (`NftLowering.normalForm`): what survives a round trip where nf_tables cannot
///   tell spellings apart — `lift(lower(m)) == normalForm(m)`, and `normalForm(m) == m` for every
///   model Weir's policies compile to, up to the order of the rules inside set groups (which the
///   kernel's sets do not keep).
///
/// Checked against the kernel (Tests/WeirKernelTests/NftTextKernelTests.swift): loading
/// `NftTextPrinter`'s text with `nft -f` leaves exactly the program `NftLowering` builds in the
/// kernel, apart from nft's `cmp gte/lte` port ranges.
public enum NftLayout {
    /// The prefix of every table Weir writes.
    public static let tablePrefix = "weir-"

    /// The nft table name of a model table (`filter` → `weir-filter`).
    public static func nftTableName(_ modelName: String) -> String { tablePrefix + modelName }

    /// The model table name of an nft table: `weir-T` → `T`; any other name (iptables-nft's
    /// `filter`, `nat`, …, or a foreign table) is kept as it is.
    public static func modelTableName(_ nftName: String) -> String {
        if nftName.hasPrefix(tablePrefix), nftName.count > tablePrefix.count {
            return String(nftName.dropFirst(tablePrefix.count))
        }
        return nftName
    }

    /// Whether an nft table is one Weir writes.
    public static func isWeirTable(_ nftName: String) -> Bool {
        nftName.hasPrefix(tablePrefix) && nftName.count > tablePrefix.count
    }

    /// The chain type of a base chain of a model table: `nat` in the nat table, `route` for
    /// mangle OUTPUT, `filter` otherwise.
    public static func chainType(table: String, hook: Hook) -> NftChainType {
        if table == "nat" { return .nat }
        if table == "mangle" && hook == .output { return .route }
        return .filter
    }

    /// nft's lowercase hook name (`prerouting`, `input`, …).
    public static func hookName(_ hook: Hook) -> String { hook.rawValue.lowercased() }

    /// Longest table or chain name nf_tables stores (`NFT_NAME_MAXLEN` 256 with the NUL).
    public static let maxName = 255
    /// Longest rule comment `nft` accepts (`NFTNL_UDATA_COMMENT_MAXLEN`).
    public static let maxComment = 128
    /// Longest log prefix the kernel's `log` expression accepts (`NF_LOG_PREFIXLEN` 128 with the NUL).
    public static let maxLogPrefix = 127
    /// Longest interface name (`IFNAMSIZ` 16 with the NUL).
    public static let maxInterface = 15
    /// The log level the kernel uses (and reports back) when none is given (`LOGLEVEL_WARNING`).
    public static let defaultLogLevel: UInt8 = 4
}
