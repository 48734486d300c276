extension MasqExpression {
    /// The `NFTA_MASQ_FLAGS` to send: `NF_NAT_RANGE_PROTO_SPECIFIED` when the expression has
    /// port registers, else none (the attribute is then left out).
    ///
    /// The kernel's `nft_masq` only uses the port registers when this flag is set (its eval copies
    /// `priv->flags` into the range and `nf_nat` ignores ports without PROTO_SPECIFIED), and it
    /// reports the flags back exactly as sent (`masq proto_min reg 1 proto_max reg 1 flags 0x2`).
    /// `nft` sends the same. A writer must encode this; a reader may check that a read-back
    /// `masq` carries no other flag (random, persistent), which this type cannot hold.
    public var flags: NatExpression.Flags { protoMin != nil ? .protoSpecified : [] }
}
