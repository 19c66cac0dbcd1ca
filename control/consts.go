package control

import "fmt"

// MessageType is the value of the Message Type AVP (RFC 2661 section
// 3.2, RFC 3931 section 3.1).
type MessageType uint16

// Message types. The values 1..16 are the same in both versions.
const (
	MsgSCCRQ   MessageType = 1  // Start-Control-Connection-Request
	MsgSCCRP   MessageType = 2  // Start-Control-Connection-Reply
	MsgSCCCN   MessageType = 3  // Start-Control-Connection-Connected
	MsgStopCCN MessageType = 4  // Stop-Control-Connection-Notification
	MsgHELLO   MessageType = 6  // Hello
	MsgOCRQ    MessageType = 7  // Outgoing-Call-Request
	MsgOCRP    MessageType = 8  // Outgoing-Call-Reply
	MsgOCCN    MessageType = 9  // Outgoing-Call-Connected
	MsgICRQ    MessageType = 10 // Incoming-Call-Request
	MsgICRP    MessageType = 11 // Incoming-Call-Reply
	MsgICCN    MessageType = 12 // Incoming-Call-Connected
	MsgCDN     MessageType = 14 // Call-Disconnect-Notify
	MsgWEN     MessageType = 15 // WAN-Error-Notify
	MsgSLI     MessageType = 16 // Set-Link-Info
	MsgACK     MessageType = 20 // explicit Acknowledgement (L2TPv3 only)
)

var msgNames = [...]string{
	MsgSCCRQ: "SCCRQ", MsgSCCRP: "SCCRP", MsgSCCCN: "SCCCN", MsgStopCCN: "StopCCN",
	MsgHELLO: "HELLO", MsgOCRQ: "OCRQ", MsgOCRP: "OCRP", MsgOCCN: "OCCN",
	MsgICRQ: "ICRQ", MsgICRP: "ICRP", MsgICCN: "ICCN", MsgCDN: "CDN",
	MsgWEN: "WEN", MsgSLI: "SLI", MsgACK: "ACK",
}

func (t MessageType) String() string {
	if int(t) < len(msgNames) && msgNames[t] != "" {
		return msgNames[t]
	}
	return fmt.Sprintf("msgtype(%d)", uint16(t))
}

// IsCallMessage reports whether t belongs to a call (session) rather than
// to the tunnel: an unknown mandatory AVP in it ends only the call.
func (t MessageType) IsCallMessage() bool {
	switch t {
	case MsgOCRQ, MsgOCRP, MsgOCCN, MsgICRQ, MsgICRP, MsgICCN, MsgCDN, MsgWEN, MsgSLI:
		return true
	}
	return false
}

// AttrType is an AVP's Attribute Type.
type AttrType uint16

// IETF attribute types of RFC 2661 section 4.4.
const (
	AttrMessageType           AttrType = 0
	AttrResultCode            AttrType = 1
	AttrProtocolVersion       AttrType = 2
	AttrFramingCaps           AttrType = 3
	AttrBearerCaps            AttrType = 4
	AttrTieBreaker            AttrType = 5
	AttrFirmwareRevision      AttrType = 6
	AttrHostName              AttrType = 7
	AttrVendorName            AttrType = 8
	AttrAssignedTunnelID      AttrType = 9
	AttrReceiveWindowSize     AttrType = 10
	AttrChallenge             AttrType = 11
	AttrQ931Cause             AttrType = 12
	AttrChallengeResponse     AttrType = 13
	AttrAssignedSessionID     AttrType = 14
	AttrCallSerialNumber      AttrType = 15
	AttrMinBPS                AttrType = 16
	AttrMaxBPS                AttrType = 17
	AttrBearerType            AttrType = 18
	AttrFramingType           AttrType = 19
	AttrCalledNumber          AttrType = 21
	AttrCallingNumber         AttrType = 22
	AttrSubAddress            AttrType = 23
	AttrTxConnectSpeed        AttrType = 24
	AttrPhysicalChannelID     AttrType = 25
	AttrInitialRecvLCPConfReq AttrType = 26
	AttrLastSentLCPConfReq    AttrType = 27
	AttrLastRecvLCPConfReq    AttrType = 28
	AttrProxyAuthenType       AttrType = 29
	AttrProxyAuthenName       AttrType = 30
	AttrProxyAuthenChallenge  AttrType = 31
	AttrProxyAuthenID         AttrType = 32
	AttrProxyAuthenResponse   AttrType = 33
	AttrCallErrors            AttrType = 34
	AttrACCM                  AttrType = 35
	AttrRandomVector          AttrType = 36
	AttrPrivateGroupID        AttrType = 37
	AttrRxConnectSpeed        AttrType = 38
	AttrSequencingRequired    AttrType = 39
)

// IETF attribute types added by RFC 3931 section 5.4 (L2TPv3 only).
const (
	AttrMessageDigest      AttrType = 59
	AttrRouterID           AttrType = 60
	AttrAssignedConnID     AttrType = 61
	AttrPWCapList          AttrType = 62
	AttrLocalSessionID     AttrType = 63
	AttrRemoteSessionID    AttrType = 64
	AttrAssignedCookie     AttrType = 65
	AttrRemoteEndID        AttrType = 66
	AttrPWType             AttrType = 68
	AttrL2SpecificSublayer AttrType = 69
	AttrDataSequencing     AttrType = 70
	AttrCircuitStatus      AttrType = 71
	AttrPreferredLanguage  AttrType = 72
	AttrCtlMsgAuthNonce    AttrType = 73
	AttrTxConnectSpeedV3   AttrType = 74
	AttrRxConnectSpeedV3   AttrType = 75
)

// KnownV2 reports whether a is an attribute this package understands in
// an L2TPv2 control message: an IETF attribute of RFC 2661 with its
// reserved bits clear. Pass it to FirstUnknownMandatory.
func KnownV2(a AVP) bool {
	if a.VendorID != 0 || a.Reserved() {
		return false
	}
	return a.Type <= AttrSequencingRequired && a.Type != 20
}

// Result codes of the StopCCN Result Code AVP (RFC 2661 section 4.4.2).
const (
	StopResultClear         uint16 = 1 // general request to clear control connection
	StopResultGeneralError  uint16 = 2 // general error, Error Code says which
	StopResultAlreadyExists uint16 = 3 // control channel already exists
	StopResultNotAuthorized uint16 = 4 // requester is not authorized
	StopResultBadVersion    uint16 = 5 // protocol version not supported
	StopResultShuttingDown  uint16 = 6 // requester is being shut down
	StopResultFSMError      uint16 = 7 // finite state machine error
)

// Result codes of the CDN Result Code AVP (RFC 2661 section 4.4.2).
const (
	CDNResultLostCarrier     uint16 = 1  // loss of carrier
	CDNResultGeneralError    uint16 = 2  // reason in the Error Code
	CDNResultAdmin           uint16 = 3  // administrative reasons
	CDNResultNoFacilitiesTmp uint16 = 4  // no appropriate facilities (temporary)
	CDNResultNoFacilities    uint16 = 5  // no appropriate facilities (permanent)
	CDNResultInvalidDest     uint16 = 6  // invalid destination
	CDNResultNoCarrier       uint16 = 7  // no carrier detected
	CDNResultBusy            uint16 = 8  // busy signal
	CDNResultNoDialTone      uint16 = 9  // no dial tone
	CDNResultTimeout         uint16 = 10 // not established in time
	CDNResultNoFraming       uint16 = 11 // no appropriate framing detected
)

// General error codes of the Result Code AVP (RFC 2661 section 4.4.2).
const (
	ErrCodeNone             uint16 = 0 // no general error
	ErrCodeNoTunnel         uint16 = 1 // no control connection exists yet
	ErrCodeBadLength        uint16 = 2 // length is wrong
	ErrCodeBadValue         uint16 = 3 // field out of range or reserved field non-zero
	ErrCodeNoResources      uint16 = 4 // insufficient resources
	ErrCodeBadSessionID     uint16 = 5 // session id invalid in this context
	ErrCodeVendor           uint16 = 6 // generic vendor-specific error
	ErrCodeTryAnother       uint16 = 7 // try another LNS; message holds its address
	ErrCodeUnknownMandatory uint16 = 8 // unknown AVP with the M bit set
)

// Framing and bearer capability/type bits (RFC 2661 sections 4.4.2, 4.4.5).
const (
	FramingSync   uint32 = 1 // synchronous framing
	FramingAsync  uint32 = 2 // asynchronous framing
	BearerDigital uint32 = 1 // digital access
	BearerAnalog  uint32 = 2 // analog access
)

// ProtocolVersionV2 is the Protocol Version AVP value of RFC 2661: version
// 1, revision 0.
const ProtocolVersionV2 uint16 = 0x0100

// DefaultWindow is the receive window assumed when the peer sends no
// Receive Window Size AVP (RFC 2661 section 4.4.3).
const DefaultWindow = 4
