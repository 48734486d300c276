import CNftnl
import WeirNftables

extension ImmediateExpression: NetlinkExpression {
    /// `NFTNL_EXPR_IMM_DREG`
    static let destinationAttribute = UInt16(NFTNL_EXPR_IMM_DREG)
    /// `NFTNL_EXPR_IMM_DATA`
    static let dataAttribute = UInt16(NFTNL_EXPR_IMM_DATA)
    /// `NFTNL_EXPR_IMM_VERDICT`
    static let verdictAttribute = UInt16(NFTNL_EXPR_IMM_VERDICT)
    /// `NFTNL_EXPR_IMM_CHAIN`
    static let chainAttribute = UInt16(NFTNL_EXPR_IMM_CHAIN)
    /// `NFTNL_EXPR_IMM_CHAIN_ID`
    static let chainIDAttribute = UInt16(NFTNL_EXPR_IMM_CHAIN_ID)

    static var nftnlNames: [String] { ["immediate"] }

    func encode(into e: NftnlExprRef) throws(ExpressionEncodingError) {
        e.set(Self.destinationAttribute, destination)
        switch value {
        case .data(let bytes):
            try ExpressionCodec.checkValue(bytes, "immediate data")
            e.set(Self.dataAttribute, bytes)
        case .verdict(let verdict):
            // Verdict codes are negative for nf_tables' own verdicts (NFT_JUMP = -3 …): sent as
            // their 32-bit pattern.
            e.set(Self.verdictAttribute, UInt32(bitPattern: verdict.code))
            if let chain = verdict.chain {
                try ExpressionCodec.checkString(chain, "the chain name '\(chain)'", maxBytes: NF.nameMaxLength - 1)
                e.set(Self.chainAttribute, chain)
            }
        }
    }

    static func decode(_ e: NftnlExprRef) throws(Unrepresentable) -> ImmediateExpression {
        let register = try ExpressionCodec.require(e.register(destinationAttribute), e, "a destination register")
        try ExpressionCodec.requireUnset(e, [(chainIDAttribute, "a chain id")])
        if let raw = e.u32(verdictAttribute) {
            let verdict: Verdict
            switch Int32(bitPattern: raw) {
            case Verdict.accept.code: verdict = .accept
            case Verdict.drop.code: verdict = .drop
            case Verdict.continue.code: verdict = .continue
            case Verdict.return.code: verdict = .return
            case Verdict.jump("").code: verdict = .jump(try ExpressionCodec.require(e.string(chainAttribute), e, "a chain for jump"))
            case Verdict.goto("").code: verdict = .goto(try ExpressionCodec.require(e.string(chainAttribute), e, "a chain for goto"))
            default: throw Unrepresentable(reason: "immediate verdict \(Int32(bitPattern: raw)) has no program form")
            }
            return ImmediateExpression(.verdict(verdict), into: register)
        }
        return ImmediateExpression(.data(try ExpressionCodec.require(e.data(dataAttribute), e, "data or a verdict")), into: register)
    }
}
