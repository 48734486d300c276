import WeirNftables

extension NftReadback {
    /// `program` as the kernel reports it back once applied — the normalisation readback
    /// comparisons need. Observed on Linux 6.18 (see the kernel tests):
    ///
    /// * `nat`: a missing `addr_max` register reads back as `addr_min`, a missing `proto_max`
    ///   as `proto_min`, and the flags gain `NF_NAT_RANGE_MAP_IPS` when there is an address
    ///   register and `NF_NAT_RANGE_PROTO_SPECIFIED` when there is a port register.
    /// * `masq`: a missing `proto_max` register reads back as `proto_min` (no flags are added).
    /// * `log`: no level reads back as level 4 (`NFT_LOGLEVEL_WARNING`).
    /// * `reject` with a TCP reset: the ICMP code is not kept (reads back 0).
    /// * With `zeroingCounters`, counter values are set to 0 (the kernel counts traffic).
    /// * `lookup`: the set id (`NFTA_LOOKUP_SET_ID`, a transaction-local number) is not
    ///   reported; the set's name is.
    /// * Sets: elements come back in the kernel's order and interval sets as start/end pairs;
    ///   the readback normalises both (`NftSet.normalized()`: ascending keys, ranges), so the
    ///   program's sets are normalised too. A verdict map reports data length 16
    ///   (`sizeof(struct nft_verdict)`) whatever was sent.
    ///
    /// Everything else (registers, data bytes, verdicts, chain order, rule order, comments, set
    /// order, set flags, key and data types) reads back exactly. The function is idempotent, so
    /// it may be applied to both sides.
    public static func kernelForm(of program: NftRuleset, zeroingCounters: Bool = false) -> NftRuleset {
        var out = program
        for t in out.tables.indices {
            for s in out.tables[t].sets.indices {
                var set = (try? out.tables[t].sets[s].normalized()) ?? out.tables[t].sets[s]
                if set.dataType == NF.dataVerdict { set.dataLength = verdictDataLength }
                out.tables[t].sets[s] = set
            }
            for c in out.tables[t].chains.indices {
                for r in out.tables[t].chains[c].rules.indices {
                    out.tables[t].chains[c].rules[r].expressions = out.tables[t].chains[c].rules[r].expressions.map {
                        kernelForm(of: $0, zeroingCounters: zeroingCounters)
                    }
                }
            }
        }
        return out
    }

    /// The data length the kernel reports for a verdict map: `sizeof(struct nft_verdict)` on a
    /// 64-bit kernel (observed on Linux 6.18).
    static let verdictDataLength: UInt32 = 16

    static func kernelForm(of expression: any NftExpression, zeroingCounters: Bool) -> any NftExpression {
        switch expression {
        case var lookup as LookupExpression:
            lookup.setID = nil
            return lookup
        case var nat as NatExpression:
            if nat.addressMin != nil {
                nat.addressMax = nat.addressMax ?? nat.addressMin
                nat.flags.insert(.mapIPs)
            }
            if nat.protoMin != nil {
                nat.protoMax = nat.protoMax ?? nat.protoMin
                nat.flags.insert(.protoSpecified)
            }
            return nat
        case var masq as MasqExpression:
            if masq.protoMin != nil { masq.protoMax = masq.protoMax ?? masq.protoMin }
            return masq
        case var log as LogExpression:
            log.level = log.level ?? 4
            return log
        case var reject as RejectExpression where reject.type == .tcpReset:
            reject.code = 0
            return reject
        case is CounterExpression where zeroingCounters:
            return CounterExpression()
        default:
            return expression
        }
    }
}
