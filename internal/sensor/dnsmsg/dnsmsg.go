// Package dnsmsg decodes the question of a DNS query as the node sensor
// captures it: the UDP payload of a datagram sent to port 53, cut by the
// kernel probe at 256 bytes and written by whatever process sent it, so
// hostile.
//
// It owns only the header and the first question. It does not decode
// answers, EDNS options or DNS over TCP, and it does not judge names:
// detections do that on the server.
package dnsmsg

import (
	"encoding/binary"
	"errors"
	"fmt"
	"strconv"
)

// MaxName bounds a decoded name in presentation form, the bound the
// sensor's wire format puts on dns.name.
const MaxName = 255

const (
	headerLen = 12
	// maxWireName is RFC 1035's bound on a name's encoded length.
	maxWireName = 255
	// maxPointers bounds compression pointers followed in one name. Each
	// pointer must also point backwards, which alone guarantees the walk
	// ends; the cap keeps the cost of a hostile chain small.
	maxPointers = 16
)

var (
	// ErrMalformed is wrapped by every error about a message that is not
	// a well-formed DNS message.
	ErrMalformed = errors.New("malformed DNS message")
	// ErrTruncated is wrapped (together with ErrMalformed) when the
	// message ends inside its question: the sender's datagram was short,
	// or the probe cut a long one. Parse then returns the labels it read.
	ErrTruncated = errors.New("DNS message truncated")
)

// Question is the first question of a DNS message.
type Question struct {
	// Name is the queried name in presentation form: lower case (ASCII
	// letters only, as DNS compares names), without the trailing dot,
	// "." for the root. Bytes other than printable ASCII are written
	// \DDD and a dot or backslash inside a label is escaped with a
	// backslash (RFC 1035 section 5.1), so a label cannot forge a
	// boundary or smuggle control characters.
	Name string
	// Type is the query type's mnemonic ("A", "AAAA") or "TYPE<n>"; Code
	// its number.
	Type string
	Code uint16
	// Query is set when the message is a query (QR bit clear); Opcode is
	// the header's opcode (0 for a standard query).
	Query  bool
	Opcode uint8
	// Truncated says the message ended inside the question. Name then
	// holds the complete labels before the cut and Type is empty.
	Truncated bool
}

// Parse decodes the header and the first question of msg. Errors wrap
// ErrMalformed; for a message cut inside its question they also wrap
// ErrTruncated and the returned Question has Truncated set and the labels
// read so far, so that a caller may still report a long name the probe cut.
func Parse(msg []byte) (Question, error) {
	if len(msg) < headerLen {
		return Question{}, fmt.Errorf("%w: %w: %d bytes, a header is %d", ErrMalformed, ErrTruncated, len(msg), headerLen)
	}
	flags := binary.BigEndian.Uint16(msg[2:])
	q := Question{
		Query:  flags&0x8000 == 0,
		Opcode: uint8(flags>>11) & 0xf,
	}
	if n := binary.BigEndian.Uint16(msg[4:]); n == 0 {
		return Question{}, fmt.Errorf("%w: no question", ErrMalformed)
	}
	// Room for the longest label escaped on top of a name at the bound.
	var buf [MaxName + 1 + 4*63]byte
	name, end, err := readName(msg, headerLen, buf[:0])
	if err != nil {
		if errors.Is(err, ErrTruncated) && len(name) > 0 {
			q.Name = string(name)
			q.Truncated = true
			return q, err
		}
		return Question{}, err
	}
	if end+2 > len(msg) {
		q.Name = string(name)
		q.Truncated = true
		return q, fmt.Errorf("%w: %w: the question's type is missing", ErrMalformed, ErrTruncated)
	}
	q.Name = string(name)
	q.Code = binary.BigEndian.Uint16(msg[end:])
	q.Type = TypeString(q.Code)
	return q, nil
}

// readName decodes the name at msg[off:] into dst in presentation form and
// returns it with the offset just past the name's encoding where the
// message continues. On ErrTruncated the labels complete before the cut
// are returned.
func readName(msg []byte, off int, dst []byte) ([]byte, int, error) {
	end := -1 // where the message continues, set at the first pointer
	wire := 0 // encoded length so far, bounded by maxWireName
	pointers := 0
	// lowest is the start of the run of labels being read: a pointer must
	// point before it, so every jump moves strictly backwards.
	lowest := off
	for {
		if off >= len(msg) {
			return dst, 0, fmt.Errorf("%w: %w: name at offset %d", ErrMalformed, ErrTruncated, off)
		}
		c := int(msg[off])
		switch c & 0xc0 {
		case 0x00:
		case 0xc0:
			if off+1 >= len(msg) {
				return dst, 0, fmt.Errorf("%w: %w: compression pointer at offset %d", ErrMalformed, ErrTruncated, off)
			}
			target := int(binary.BigEndian.Uint16(msg[off:]) & 0x3fff)
			pointers++
			switch {
			case pointers > maxPointers:
				return nil, 0, fmt.Errorf("%w: more than %d compression pointers in a name", ErrMalformed, maxPointers)
			case target < headerLen || target >= lowest:
				return nil, 0, fmt.Errorf("%w: compression pointer at offset %d to offset %d does not point back into the message", ErrMalformed, off, target)
			}
			if end < 0 {
				end = off + 2
			}
			off, lowest = target, target
			continue
		default:
			return nil, 0, fmt.Errorf("%w: label type %#x at offset %d", ErrMalformed, c&0xc0, off)
		}
		wire += 1 + c
		if wire > maxWireName {
			return nil, 0, fmt.Errorf("%w: name longer than %d bytes", ErrMalformed, maxWireName)
		}
		if c == 0 {
			if end < 0 {
				end = off + 1
			}
			if len(dst) == 0 {
				dst = append(dst, '.')
			}
			return dst, end, nil
		}
		if off+1+c > len(msg) {
			return dst, 0, fmt.Errorf("%w: %w: label at offset %d", ErrMalformed, ErrTruncated, off)
		}
		var err error
		if dst, err = appendLabel(dst, msg[off+1:off+1+c]); err != nil {
			return nil, 0, err
		}
		off += 1 + c
	}
}

// appendLabel appends a dot (unless dst is empty) and label in
// presentation form, lower-cased. dst must have room for the escaped
// label (4 bytes per byte) so that appending never reallocates; the bound
// is checked once the label is written.
func appendLabel(dst, label []byte) ([]byte, error) {
	if len(dst) > 0 {
		dst = append(dst, '.')
	}
	for _, b := range label {
		switch {
		case 'a' <= b && b <= 'z', '0' <= b && b <= '9', b == '-', b == '_':
			dst = append(dst, b)
		case 'A' <= b && b <= 'Z':
			dst = append(dst, b+('a'-'A'))
		case b == '.' || b == '\\':
			dst = append(dst, '\\', b)
		case b <= ' ' || b >= 0x7f:
			dst = append(dst, '\\', '0'+b/100, '0'+b/10%10, '0'+b%10)
		default:
			dst = append(dst, b)
		}
	}
	if len(dst) > MaxName {
		return nil, fmt.Errorf("%w: name longer than %d bytes in presentation form", ErrMalformed, MaxName)
	}
	return dst, nil
}

// typeNames are the mnemonics of the query types a detection may name
// (IANA "Resource Record (RR) TYPEs").
var typeNames = [...]string{
	1: "A", 2: "NS", 5: "CNAME", 6: "SOA", 12: "PTR", 13: "HINFO", 15: "MX",
	16: "TXT", 17: "RP", 18: "AFSDB", 24: "SIG", 25: "KEY", 28: "AAAA",
	29: "LOC", 33: "SRV", 35: "NAPTR", 36: "KX", 37: "CERT", 39: "DNAME",
	41: "OPT", 42: "APL", 43: "DS", 44: "SSHFP", 45: "IPSECKEY", 46: "RRSIG",
	47: "NSEC", 48: "DNSKEY", 49: "DHCID", 50: "NSEC3", 51: "NSEC3PARAM",
	52: "TLSA", 53: "SMIMEA", 55: "HIP", 59: "CDS", 60: "CDNSKEY",
	61: "OPENPGPKEY", 62: "CSYNC", 63: "ZONEMD", 64: "SVCB", 65: "HTTPS",
	99: "SPF", 108: "EUI48", 109: "EUI64", 249: "TKEY", 250: "TSIG",
	251: "IXFR", 252: "AXFR", 253: "MAILB", 254: "MAILA", 255: "ANY",
	256: "URI", 257: "CAA",
}

// TypeString returns the mnemonic of a query type, or "TYPE<n>" (RFC 3597)
// for one without.
func TypeString(t uint16) string {
	if int(t) < len(typeNames) && typeNames[t] != "" {
		return typeNames[t]
	}
	return "TYPE" + strconv.Itoa(int(t))
}
