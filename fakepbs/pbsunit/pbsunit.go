// Package pbsunit reads and writes the two PBS value types that carry
// units: sizes ("4gb", "512m", "1kw") and durations ("01:30:00"). The PBS
// server (fakepbs) and the PBS commands (fakepbs/cli) both use it, so that
// a value the client accepts is one the server accepts and both show it the
// same way.
//
// The rules are OpenPBS's (src/lib/Libattr/attr_fn_size.c to_size and
// from_size, attr_fn_time.c decode_time and encode_time):
//
//   - A size is a decimal integer, then an optional scale k, m, g, t or p
//     (powers of 1024), then an optional unit b (bytes, the default) or w
//     (words of 8 bytes, SIZEOF_WORD in OpenPBS's server_limits.h); letters
//     in either case. A bare "b" or "w" may follow the number directly
//     ("100b", "3w"). Nothing else may follow.
//   - A size is shown as the number as given, the scale letter and "b" or
//     "w", in lower case: "4g" and "4GB" both read back as "4gb", "100" as
//     "100b". OpenPBS does not rescale a value it stores.
//   - A duration is [[HH:]MM:]SS[.fff]: at most two colons, each after a
//     digit; fields are not bounded ("1:75" is 135 s); a fraction of half a
//     second or more rounds up. It is shown as HH:MM:SS, hours unbounded.
package pbsunit

import (
	"fmt"
	"math"
	"math/bits"
	"strconv"
	"strings"
	"time"
)

// WordSize is the size of a PBS word in bytes (SIZEOF_WORD).
const WordSize = 8

// Size is a PBS size as the server keeps it: a count, a binary scale and a
// unit. The zero Size is 0 bytes.
type Size struct {
	Num   uint64 // the number as written
	Shift uint   // 0, 10, 20, 30, 40 or 50: the scale k, m, g, t, p
	Words bool   // the unit is words (WordSize bytes), not bytes
}

// ParseSize reads a PBS size. The error says what is wrong with v.
func ParseSize(v string) (Size, error) {
	var s Size
	i := 0
	for i < len(v) && v[i] >= '0' && v[i] <= '9' {
		i++
	}
	if i == 0 {
		return s, fmt.Errorf("size %q: want a number with an optional k, m, g, t or p scale and b or w unit", v)
	}
	n, err := strconv.ParseUint(v[:i], 10, 64)
	if err != nil {
		return s, fmt.Errorf("size %q: number out of range", v)
	}
	s.Num = n
	rest := strings.ToLower(v[i:])
	if rest != "" {
		if k := strings.IndexByte("kmgtp", rest[0]); k >= 0 {
			s.Shift = uint(10 * (k + 1))
			rest = rest[1:]
		}
	}
	switch rest {
	case "", "b":
	case "w":
		s.Words = true
	default:
		return Size{}, fmt.Errorf("size %q: unknown unit %q (want k, m, g, t or p, then b or w)", v, v[len(v)-len(rest):])
	}
	return s, nil
}

// MustSize is ParseSize for constants in code and tests; it panics on a
// malformed value.
func MustSize(v string) Size {
	s, err := ParseSize(v)
	if err != nil {
		panic(err)
	}
	return s
}

// Bytes returns the size in bytes, math.MaxInt64 when it does not fit.
func (s Size) Bytes() int64 {
	n := s.Num
	if s.Words {
		hi, lo := bits.Mul64(n, WordSize)
		if hi != 0 {
			return math.MaxInt64
		}
		n = lo
	}
	if s.Shift > 0 && (s.Shift >= 64 || n > math.MaxUint64>>s.Shift) {
		return math.MaxInt64
	}
	n <<= s.Shift
	if n > math.MaxInt64 {
		return math.MaxInt64
	}
	return int64(n)
}

// KB returns the size in kilobytes, rounded up (OpenPBS's get_kilobytes).
func (s Size) KB() int64 {
	b := s.Bytes()
	if b == math.MaxInt64 {
		return b >> 10
	}
	return (b + 1023) / 1024
}

// String writes the size as the server shows it: "4gb", "100b", "2kw".
func (s Size) String() string {
	letter := ""
	if s.Shift >= 10 && s.Shift <= 50 {
		letter = string("kmgtp"[s.Shift/10-1])
	}
	unit := "b"
	if s.Words {
		unit = "w"
	}
	return strconv.FormatUint(s.Num, 10) + letter + unit
}

// Times returns the size n times over, in the same scale and unit (a
// chunk's memory times the chunk count).
func (s Size) Times(n int) Size {
	if n <= 0 {
		return Size{Shift: s.Shift, Words: s.Words}
	}
	hi, lo := bits.Mul64(s.Num, uint64(n))
	if hi != 0 {
		lo = math.MaxUint64
	}
	s.Num = lo
	return s
}

// Plus adds two sizes as OpenPBS's set_size does: adding to zero takes the
// other value as it is; otherwise both go to bytes if either is in bytes,
// a value without a scale is rounded up to kilobytes, and the sum is kept in
// the smaller of the two scales.
func (s Size) Plus(o Size) Size {
	if s.Num == 0 {
		return o
	}
	if o.Num == 0 {
		return s
	}
	a, b := s, o
	if a.Words != b.Words {
		if a.Words {
			a.Num, a.Words = a.Num*WordSize, false
		} else {
			b.Num, b.Words = b.Num*WordSize, false
		}
	}
	for _, x := range []*Size{&a, &b} {
		if x.Shift == 0 {
			x.Num, x.Shift = (x.Num+1023)>>10, 10
		}
	}
	if a.Shift > b.Shift {
		a.Num, a.Shift = a.Num<<(a.Shift-b.Shift), b.Shift
	} else if b.Shift > a.Shift {
		b.Num, b.Shift = b.Num<<(b.Shift-a.Shift), a.Shift
	}
	a.Num += b.Num
	return a
}

// KBString writes a byte count in kilobytes, rounded up, as the server
// shows node memory, exec_vnode and resources_used ("1048576kb").
func KBString(bytes int64) string {
	if bytes < 0 {
		bytes = 0
	}
	return strconv.FormatInt((bytes+1023)/1024, 10) + "kb"
}

// maxTime is the largest duration OpenPBS accepts, in seconds (LONG_MAX-1).
const maxTime = math.MaxInt64 - 1

// ParseTime reads a PBS duration, [[HH:]MM:]SS[.fff], and returns whole
// seconds (a fraction of .5 or more rounds up). The error says what is
// wrong with v.
func ParseTime(v string) (int64, error) {
	bad := func(why string) (int64, error) {
		return 0, fmt.Errorf("time %q: %s (want [[HH:]MM:]SS[.fff])", v, why)
	}
	if v == "" {
		return bad("empty")
	}
	whole, frac, hasFrac := strings.Cut(v, ".")
	if hasFrac {
		if whole == "" || !isDigit(whole[len(whole)-1]) {
			return bad("a fraction must follow a digit")
		}
		for i := 0; i < len(frac); i++ {
			if !isDigit(frac[i]) {
				return bad("the fraction takes digits only")
			}
		}
	}
	fields := strings.Split(whole, ":")
	if len(fields) > 3 {
		return bad("more than two colons")
	}
	var total int64
	for i, f := range fields {
		last := i == len(fields)-1
		if !last && f == "" {
			return bad("a colon must follow a digit")
		}
		var n int64
		if f != "" {
			for j := 0; j < len(f); j++ {
				if !isDigit(f[j]) {
					return bad(fmt.Sprintf("unexpected %q", f[j]))
				}
			}
			var err error
			n, err = strconv.ParseInt(f, 10, 64)
			if err != nil {
				return bad("out of range")
			}
		}
		if total > (maxTime-n)/60 {
			return bad("out of range")
		}
		total = total*60 + n
	}
	if len(frac) > 0 {
		ms := frac
		if len(ms) > 3 {
			ms = ms[:3]
		}
		for len(ms) < 3 {
			ms += "0"
		}
		if m, _ := strconv.Atoi(ms); m >= 500 {
			if total >= maxTime {
				return bad("out of range")
			}
			total++
		}
	}
	return total, nil
}

// ParseDuration is ParseTime as a time.Duration.
func ParseDuration(v string) (time.Duration, error) {
	s, err := ParseTime(v)
	if err != nil {
		return 0, err
	}
	if s > int64(math.MaxInt64/time.Second) {
		return 0, fmt.Errorf("time %q: out of range", v)
	}
	return time.Duration(s) * time.Second, nil
}

// FormatTime writes seconds as HH:MM:SS, hours unbounded; a negative value
// shows as 00:00:00.
func FormatTime(sec int64) string {
	if sec < 0 {
		sec = 0
	}
	return fmt.Sprintf("%02d:%02d:%02d", sec/3600, sec/60%60, sec%60)
}

// FormatDuration is FormatTime for a time.Duration (whole seconds,
// truncated).
func FormatDuration(d time.Duration) string { return FormatTime(int64(d / time.Second)) }

func isDigit(c byte) bool { return c >= '0' && c <= '9' }
