import CNftnl

// Swift names for the C numbers WeirNetlink uses; each doc comment names the C constant.
// Values come from the C headers wherever Swift can import them.

/// Netlink message header numbers.
enum Netlink {
    /// `sizeof(struct nlmsghdr)`
    static let headerSize = 16
    /// `sizeof(struct nfgenmsg)`
    static let nfgenmsgSize = 4
    /// `NLMSG_ERROR`
    static let error = UInt16(NLMSG_ERROR)
    /// `NLMSG_DONE`
    static let done = UInt16(NLMSG_DONE)
    /// `NLMSG_MIN_TYPE`: types below are netlink control messages.
    static let minType = UInt16(NLMSG_MIN_TYPE)

    /// `NLM_F_*` request flags.
    enum Flag {
        /// `NLM_F_REQUEST`
        static let request = UInt16(NLM_F_REQUEST)
        /// `NLM_F_MULTI`
        static let multi = UInt16(NLM_F_MULTI)
        /// `NLM_F_ACK`
        static let ack = UInt16(NLM_F_ACK)
        /// `NLM_F_DUMP_INTR`
        static let dumpInterrupted = UInt16(NLM_F_DUMP_INTR)
        /// `NLM_F_DUMP` (`NLM_F_ROOT|NLM_F_MATCH`)
        static let dump = UInt16(NLM_F_ROOT | NLM_F_MATCH)
        /// `NLM_F_EXCL`
        static let exclusive = UInt16(NLM_F_EXCL)
        /// `NLM_F_CREATE`
        static let create = UInt16(NLM_F_CREATE)
        /// `NLM_F_APPEND`
        static let append = UInt16(NLM_F_APPEND)
        /// `NLM_F_CAPPED` (on an `NLMSG_ERROR`: the request is not echoed)
        static let capped = UInt16(NLM_F_CAPPED)
        /// `NLM_F_ACK_TLVS` (on an `NLMSG_ERROR`: extended-ack attributes follow)
        static let ackTLVs = UInt16(NLM_F_ACK_TLVS)
    }

    /// `NETLINK_EXT_ACK`
    static let extendedAckOption = Int32(NETLINK_EXT_ACK)
    /// `NETLINK_CAP_ACK`
    static let capAckOption = Int32(NETLINK_CAP_ACK)
    /// `NETLINK_NETFILTER`
    static let netfilterProtocol = Int32(NETLINK_NETFILTER)
    /// `MNL_SOCKET_AUTOPID`
    static let autoPortID = pid_t(MNL_SOCKET_AUTOPID)
    /// `NLMSGERR_ATTR_MSG`
    static let errorAttributeMessage = UInt16(NLMSGERR_ATTR_MSG.rawValue)
    /// `NLMSGERR_ATTR_OFFS`
    static let errorAttributeOffset = UInt16(NLMSGERR_ATTR_OFFS.rawValue)
    /// `NLA_F_NESTED`
    static let nestedFlag = UInt16(NLA_F_NESTED)
    /// `NLA_TYPE_MASK` (`~(NLA_F_NESTED | NLA_F_NET_BYTEORDER)`)
    static let attributeTypeMask = ~(UInt16(NLA_F_NESTED) | UInt16(NLA_F_NET_BYTEORDER))
}

/// nfnetlink and nf_tables numbers.
enum NF {
    /// `NFNL_SUBSYS_NFTABLES`
    static let subsystem = UInt16(NFNL_SUBSYS_NFTABLES)
    /// `NFNETLINK_V0`
    static let version = UInt8(NFNETLINK_V0)
    /// `NFNL_MSG_BATCH_BEGIN`
    static let batchBegin = UInt16(NFNL_MSG_BATCH_BEGIN)
    /// `NFNL_MSG_BATCH_END`
    static let batchEnd = UInt16(NFNL_MSG_BATCH_END)
    /// `NFNL_BATCH_GENID`
    static let batchGenerationAttribute = UInt16(NFNL_BATCH_GENID.rawValue)

    /// `NFT_MSG_*` (without the subsystem byte).
    enum Message {
        /// `NFT_MSG_NEWTABLE`
        static let newTable = UInt16(NFT_MSG_NEWTABLE.rawValue)
        /// `NFT_MSG_GETTABLE`
        static let getTable = UInt16(NFT_MSG_GETTABLE.rawValue)
        /// `NFT_MSG_DELTABLE`
        static let deleteTable = UInt16(NFT_MSG_DELTABLE.rawValue)
        /// `NFT_MSG_NEWCHAIN`
        static let newChain = UInt16(NFT_MSG_NEWCHAIN.rawValue)
        /// `NFT_MSG_GETCHAIN`
        static let getChain = UInt16(NFT_MSG_GETCHAIN.rawValue)
        /// `NFT_MSG_NEWRULE`
        static let newRule = UInt16(NFT_MSG_NEWRULE.rawValue)
        /// `NFT_MSG_GETRULE`
        static let getRule = UInt16(NFT_MSG_GETRULE.rawValue)
        /// `NFT_MSG_NEWSET`
        static let newSet = UInt16(NFT_MSG_NEWSET.rawValue)
        /// `NFT_MSG_NEWSETELEM`
        static let newSetElement = UInt16(NFT_MSG_NEWSETELEM.rawValue)
        /// `NFT_MSG_GETSET`
        static let getSet = UInt16(NFT_MSG_GETSET.rawValue)
        /// `NFT_MSG_GETSETELEM`
        static let getSetElement = UInt16(NFT_MSG_GETSETELEM.rawValue)
        /// `NFT_MSG_NEWGEN`
        static let newGeneration = UInt16(NFT_MSG_NEWGEN.rawValue)
        /// `NFT_MSG_GETGEN`
        static let getGeneration = UInt16(NFT_MSG_GETGEN.rawValue)
    }

    /// The full netlink type of an nf_tables message: `NFNL_SUBSYS_NFTABLES << 8 | NFT_MSG_*`.
    static func type(_ message: UInt16) -> UInt16 { subsystem << 8 | message }

    /// `NFPROTO_UNSPEC`
    static let familyUnspecified = UInt16(NFPROTO_UNSPEC)
    /// `NFPROTO_IPV4`
    static let familyIPv4 = UInt32(NFPROTO_IPV4)
    /// `NFPROTO_IPV6`
    static let familyIPv6 = UInt32(NFPROTO_IPV6)
    /// `NFPROTO_INET`
    static let familyInet = UInt32(NFPROTO_INET)
    /// `NFPROTO_ARP`
    static let familyARP = UInt32(NFPROTO_ARP)
    /// `NFPROTO_BRIDGE`
    static let familyBridge = UInt32(NFPROTO_BRIDGE)
    /// `NFPROTO_NETDEV`
    static let familyNetdev = UInt32(NFPROTO_NETDEV)

    /// `NF_DROP`
    static let drop = UInt32(NF_DROP)
    /// `NF_ACCEPT`
    static let accept = UInt32(NF_ACCEPT)

    /// `NF_INET_PRE_ROUTING` … `NF_INET_POST_ROUTING`
    static let hookPrerouting = UInt32(NF_INET_PRE_ROUTING.rawValue)
    static let hookInput = UInt32(NF_INET_LOCAL_IN.rawValue)
    static let hookForward = UInt32(NF_INET_FORWARD.rawValue)
    static let hookOutput = UInt32(NF_INET_LOCAL_OUT.rawValue)
    static let hookPostrouting = UInt32(NF_INET_POST_ROUTING.rawValue)

    /// `NFT_DATA_VALUE_MAXLEN`: the most bytes a data value (cmp, range, bitwise, immediate) holds.
    static let dataValueMaxLength = Int(NFT_DATA_VALUE_MAXLEN)
    /// `NFT_NAME_MAXLEN` (including the NUL).
    static let nameMaxLength = Int(NFT_NAME_MAXLEN)
    /// `NFT_USERDATA_MAXLEN`
    static let userdataMaxLength = Int(NFT_USERDATA_MAXLEN)
    /// `XT_EXTENSION_MAXNAMELEN` (including the NUL).
    static let xtNameMaxLength = 29
    /// `NFTNL_UDATA_RULE_COMMENT`
    static let udataRuleComment = UInt8(NFTNL_UDATA_RULE_COMMENT.rawValue)

    /// nf_tables rule attributes.
    enum RuleAttribute {
        /// `NFTA_RULE_TABLE`
        static let table = UInt16(NFTA_RULE_TABLE.rawValue)
        /// `NFTA_RULE_CHAIN`
        static let chain = UInt16(NFTA_RULE_CHAIN.rawValue)
        /// `NFTA_RULE_HANDLE`
        static let handle = UInt16(NFTA_RULE_HANDLE.rawValue)
        /// `NFTA_RULE_EXPRESSIONS`
        static let expressions = UInt16(NFTA_RULE_EXPRESSIONS.rawValue)
        /// `NFTA_RULE_USERDATA`
        static let userdata = UInt16(NFTA_RULE_USERDATA.rawValue)
    }
    /// `NFTA_LIST_ELEM`
    static let listElement = UInt16(NFTA_LIST_ELEM.rawValue)
    /// `NFTA_SET_ELEM_LIST_ELEMENTS`: the nest holding a NEWSETELEM message's elements.
    static let setElementListElements = UInt16(NFTA_SET_ELEM_LIST_ELEMENTS.rawValue)
    /// `NFT_DATA_VERDICT`: the data type of a verdict map (`vmap`).
    static let dataVerdict = UInt32(NFT_DATA_VERDICT.rawValue)
    /// `NFT_REG32_COUNT`: the most fields a concatenated key has.
    static let reg32Count = Int(NFT_REG32_15.rawValue - NFT_REG32_00.rawValue + 1)
    /// `NFTA_EXPR_NAME`
    static let expressionName = UInt16(NFTA_EXPR_NAME.rawValue)
    /// `NFTA_EXPR_DATA`
    static let expressionData = UInt16(NFTA_EXPR_DATA.rawValue)
}

/// libnftnl object attribute numbers (`enum nftnl_table_attr` etc.).
enum Attr {
    /// `NFTNL_TABLE_NAME`
    static let tableName = UInt16(NFTNL_TABLE_NAME.rawValue)
    /// `NFTNL_TABLE_FAMILY`
    static let tableFamily = UInt16(NFTNL_TABLE_FAMILY.rawValue)
    /// `NFTNL_CHAIN_NAME`
    static let chainName = UInt16(NFTNL_CHAIN_NAME.rawValue)
    /// `NFTNL_CHAIN_FAMILY`
    static let chainFamily = UInt16(NFTNL_CHAIN_FAMILY.rawValue)
    /// `NFTNL_CHAIN_TABLE`
    static let chainTable = UInt16(NFTNL_CHAIN_TABLE.rawValue)
    /// `NFTNL_CHAIN_HOOKNUM`
    static let chainHook = UInt16(NFTNL_CHAIN_HOOKNUM.rawValue)
    /// `NFTNL_CHAIN_PRIO`
    static let chainPriority = UInt16(NFTNL_CHAIN_PRIO.rawValue)
    /// `NFTNL_CHAIN_POLICY`
    static let chainPolicy = UInt16(NFTNL_CHAIN_POLICY.rawValue)
    /// `NFTNL_CHAIN_TYPE`
    static let chainType = UInt16(NFTNL_CHAIN_TYPE.rawValue)
    /// `NFTNL_RULE_FAMILY`
    static let ruleFamily = UInt16(NFTNL_RULE_FAMILY.rawValue)
    /// `NFTNL_RULE_TABLE`
    static let ruleTable = UInt16(NFTNL_RULE_TABLE.rawValue)
    /// `NFTNL_RULE_CHAIN`
    static let ruleChain = UInt16(NFTNL_RULE_CHAIN.rawValue)
    /// `NFTNL_RULE_HANDLE`
    static let ruleHandle = UInt16(NFTNL_RULE_HANDLE.rawValue)
    /// `NFTNL_RULE_USERDATA`
    static let ruleUserdata = UInt16(NFTNL_RULE_USERDATA.rawValue)
    /// `NFTNL_SET_TABLE`
    static let setTable = UInt16(NFTNL_SET_TABLE.rawValue)
    /// `NFTNL_SET_NAME`
    static let setName = UInt16(NFTNL_SET_NAME.rawValue)
    /// `NFTNL_SET_FLAGS`
    static let setFlags = UInt16(NFTNL_SET_FLAGS.rawValue)
    /// `NFTNL_SET_KEY_TYPE`
    static let setKeyType = UInt16(NFTNL_SET_KEY_TYPE.rawValue)
    /// `NFTNL_SET_KEY_LEN`
    static let setKeyLength = UInt16(NFTNL_SET_KEY_LEN.rawValue)
    /// `NFTNL_SET_DATA_TYPE`
    static let setDataType = UInt16(NFTNL_SET_DATA_TYPE.rawValue)
    /// `NFTNL_SET_DATA_LEN`
    static let setDataLength = UInt16(NFTNL_SET_DATA_LEN.rawValue)
    /// `NFTNL_SET_FAMILY`
    static let setFamily = UInt16(NFTNL_SET_FAMILY.rawValue)
    /// `NFTNL_SET_DESC_CONCAT` (field lengths, one byte each)
    static let setDescConcat = UInt16(NFTNL_SET_DESC_CONCAT.rawValue)
    /// `NFTNL_SET_DESC_SIZE`
    static let setDescSize = UInt16(NFTNL_SET_DESC_SIZE.rawValue)
    /// `NFTNL_SET_ID` (`NFTA_SET_ID` in NEWSET, `NFTA_SET_ELEM_LIST_SET_ID` in NEWSETELEM)
    static let setID = UInt16(NFTNL_SET_ID.rawValue)
    /// `NFTNL_SET_ELEM_FLAGS`
    static let setElementFlags = UInt16(NFTNL_SET_ELEM_FLAGS)
    /// `NFTNL_SET_ELEM_KEY`
    static let setElementKey = UInt16(NFTNL_SET_ELEM_KEY)
    /// `NFTNL_SET_ELEM_KEY_END`
    static let setElementKeyEnd = UInt16(NFTNL_SET_ELEM_KEY_END)
    /// `NFTNL_SET_ELEM_VERDICT`
    static let setElementVerdict = UInt16(NFTNL_SET_ELEM_VERDICT)
    /// `NFTNL_SET_ELEM_CHAIN`
    static let setElementChain = UInt16(NFTNL_SET_ELEM_CHAIN)
    /// `NFTNL_SET_ELEM_DATA`
    static let setElementData = UInt16(NFTNL_SET_ELEM_DATA)
    /// `NFTNL_GEN_ID`
    static let generationID = UInt16(NFTNL_GEN_ID)
    /// `NFTNL_EXPR_NAME`
    static let expressionName = UInt16(NFTNL_EXPR_NAME)
}

/// `NFTNL_OUTPUT_DEFAULT`
let nftnlOutputDefault = UInt32(NFTNL_OUTPUT_DEFAULT.rawValue)
