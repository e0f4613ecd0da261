package cli

import (
	"strings"
)

// pbsMaxSeqNum is PBS_MAXSEQNUM: the most digits a job sequence number has.
const pbsMaxSeqNum = 12

// jobID is a job identifier split the way OpenPBS's parse_jobid splits it:
// seq_number[.parent_server][@current_server]. Seq keeps an array part such
// as "12[]" or "12[3]".
type jobID struct {
	Seq     string
	Parent  string // server name after the first '.', may hold more dots
	Current string // after '@'
}

func isNameChar(c byte) bool { return c > ' ' && c < 0x7f && c != '#' && c != '@' }

// parseJobID parses a job identifier as OpenPBS's parse_jobid does and
// reports whether it is well formed.
func parseJobID(s string) (jobID, bool) {
	var id jobID
	i := 0
	for i < len(s) && isSpace(s[i]) {
		i++
	}
	start := i
	for i < len(s) && s[i] >= '0' && s[i] <= '9' {
		if i-start >= pbsMaxSeqNum {
			return id, false
		}
		i++
	}
	if i == start {
		return id, false
	}
	if i < len(s) && s[i] == '[' {
		i++
		for {
			if i >= len(s) {
				return id, false
			}
			c := s[i]
			if c == ']' {
				i++
				break
			}
			if (c >= '0' && c <= '9') || c == '-' || c == ':' {
				i++
				continue
			}
			return id, false
		}
	}
	id.Seq = s[start:i]
	// server reads the server name after sep, if s goes on with sep; ok
	// is false for a sep with no name after it.
	server := func(sep byte) (name string, ok bool) {
		if i >= len(s) || s[i] != sep {
			return "", true
		}
		i++
		p := i
		for i < len(s) && isNameChar(s[i]) {
			i++
		}
		return s[p:i], i > p
	}
	var ok bool
	if id.Parent, ok = server('.'); !ok {
		return id, false
	}
	if id.Current, ok = server('@'); !ok {
		return id, false
	}
	return id, i == len(s)
}

// isJobID reports whether a qstat operand is a job identifier rather than a
// destination: OpenPBS's pbs_isjobid looks at the first non-blank character.
func isJobID(s string) bool {
	s = strings.TrimLeft(s, " ")
	return len(s) > 0 && s[0] >= '0' && s[0] <= '9'
}

// fullJobID is get_server's job_id_out: the sequence number with the parent
// server, or the default server when the operand named none.
func fullJobID(id jobID, server string) string {
	if id.Parent != "" {
		if strings.EqualFold(id.Parent, server) {
			return id.Seq + "." + server
		}
		return id.Seq + "." + id.Parent
	}
	return id.Seq + "." + server
}

func isSpace(c byte) bool {
	return c == ' ' || c == '\t' || c == '\n' || c == '\v' || c == '\f' || c == '\r'
}
