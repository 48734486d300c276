/// `lookup reg SREG set NAME [dreg DREG] FLAGS`: whether the key in a register is an element of
/// a set of the rule's table; a lookup that fails ends the rule (with `invert`, one that
/// succeeds does). With a destination register the set is a map and the element's data is
/// loaded there — into register 0, a verdict (a vmap).
///
/// nft writes `tcp dport { 80, 443 }` as a lookup into an anonymous set (`__set0`),
/// `ip saddr != @allowed` as an inverted lookup into a named one.
///
/// The kernel always reports `NFTA_LOOKUP_FLAGS` (0 or `NFT_LOOKUP_F_INV`), and Weir always
/// sends it, so libnftnl prints the flags every time: `[ lookup reg 1 set __set0 0x0 ]`,
/// `[ lookup reg 1 set allowed 0x1 ]`, `[ lookup reg 1 set __map0 dreg 0 0x0 ]` (as
/// `nft --debug=netlink list ruleset` shows; nft itself leaves the attribute out when it is 0).
public struct LookupExpression: NftExpression, Equatable {
    public static let kind = "lookup"
    /// The set's name in the rule's table.
    public var set: String
    /// The transaction-local id of a set created in the same batch (`NFTA_LOOKUP_SET_ID`, what
    /// nft sends for `__set%d`); the kernel does not report it back.
    public var setID: UInt32?
    public var source: NftRegister
    /// For maps: where the element's data goes (`.verdict` for a vmap).
    public var destination: NftRegister?
    /// `NFT_LOOKUP_F_INV`: the rule goes on when the key is *not* in the set (`!= @set`).
    public var invert: Bool

    public init(set: String, source: NftRegister = .r1, destination: NftRegister? = nil, invert: Bool = false, setID: UInt32? = nil) {
        self.set = set
        self.setID = setID
        self.source = source
        self.destination = destination
        self.invert = invert
    }

    /// `NFT_LOOKUP_F_INV` when inverted, else 0.
    public var flags: UInt32 { invert ? 1 : 0 }

    public var description: String {
        var out = "[ lookup reg \(source) set \(set) "
        if let destination { out += "dreg \(destination) " }
        return out + "0x\(String(flags, radix: 16)) ]"
    }
}
