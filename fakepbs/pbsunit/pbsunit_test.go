package pbsunit

import (
	"math"
	"testing"
)

// The cases follow OpenPBS's to_size/from_size: every scale in either
// case, with or without b or w, round-trips to the lower-case form the
// server shows in qstat -f.
func TestParseSize(t *testing.T) {
	for _, c := range []struct {
		in    string
		shown string
		bytes int64
	}{
		{"4g", "4gb", 4 << 30},
		{"4G", "4gb", 4 << 30},
		{"4gb", "4gb", 4 << 30},
		{"4GB", "4gb", 4 << 30},
		{"4Gb", "4gb", 4 << 30},
		{"512m", "512mb", 512 << 20},
		{"512MB", "512mb", 512 << 20},
		{"16k", "16kb", 16 << 10},
		{"2t", "2tb", 2 << 40},
		{"1p", "1pb", 1 << 50},
		{"1P", "1pb", 1 << 50},
		{"100", "100b", 100},
		{"100b", "100b", 100},
		{"100B", "100b", 100},
		{"3w", "3w", 24},
		{"3W", "3w", 24},
		{"2kw", "2kw", 2 << 10 * 8},
		{"2GW", "2gw", 2 << 30 * 8},
		{"0", "0b", 0},
		{"3221225472", "3221225472b", 3221225472},
	} {
		s, err := ParseSize(c.in)
		if err != nil {
			t.Errorf("ParseSize(%q): %v", c.in, err)
			continue
		}
		if s.String() != c.shown || s.Bytes() != c.bytes {
			t.Errorf("ParseSize(%q) = %s, %d bytes; want %s, %d", c.in, s, s.Bytes(), c.shown, c.bytes)
		}
	}
}

func TestParseSizeRefuses(t *testing.T) {
	for _, in := range []string{"", "g", "gb", "4x", "4gbb", "4bw", "4bb", "4kbw", "-4g", "4 g", "4.5g", "4e", " 4g", "99999999999999999999"} {
		if s, err := ParseSize(in); err == nil {
			t.Errorf("ParseSize(%q) = %s, want an error", in, s)
		}
	}
}

func TestSizeOverflowSaturates(t *testing.T) {
	if b := MustSize("99999999999p").Bytes(); b != math.MaxInt64 {
		t.Fatalf("Bytes = %d, want MaxInt64", b)
	}
	if b := MustSize("18446744073709551615w").Bytes(); b != math.MaxInt64 {
		t.Fatalf("Bytes = %d, want MaxInt64", b)
	}
}

// Chunk sums follow set_size: one chunk keeps its own form (Gadi shows
// mem=3221225472b for select mem=3221225472), sums meet in the smaller
// scale, bytes are rounded up to kilobytes.
func TestSizeSums(t *testing.T) {
	for _, c := range []struct {
		parts []string
		count int
		want  string
	}{
		{[]string{"3221225472"}, 1, "3221225472b"},
		{[]string{"4g"}, 2, "8gb"},
		{[]string{"512m"}, 2, "1024mb"},
		{[]string{"1g", "512m"}, 1, "1536mb"},
		{[]string{"1g", "100"}, 1, "1048577kb"},
		{[]string{"1kw", "1kb"}, 1, "9kb"},
	} {
		var sum Size
		for _, p := range c.parts {
			sum = sum.Plus(MustSize(p).Times(c.count))
		}
		if sum.String() != c.want {
			t.Errorf("%v x%d = %s, want %s", c.parts, c.count, sum, c.want)
		}
	}
}

func TestParseTime(t *testing.T) {
	for _, c := range []struct {
		in    string
		sec   int64
		shown string
	}{
		{"01:30:00", 5400, "01:30:00"},
		{"90", 90, "00:01:30"},
		{"1:75", 135, "00:02:15"},
		{"100:00:00", 360000, "100:00:00"},
		{"10.5", 11, "00:00:11"},
		{"10.499", 10, "00:00:10"},
		{"5.", 5, "00:00:05"},
		{"1:", 60, "00:01:00"},
		{"0", 0, "00:00:00"},
	} {
		s, err := ParseTime(c.in)
		if err != nil {
			t.Errorf("ParseTime(%q): %v", c.in, err)
			continue
		}
		if s != c.sec || FormatTime(s) != c.shown {
			t.Errorf("ParseTime(%q) = %d (%s), want %d (%s)", c.in, s, FormatTime(s), c.sec, c.shown)
		}
	}
	for _, in := range []string{"", ":5", "1::2", "1:2:3:4", "1:.5", ".5", "1h", "-5", "1.5x", "1.2.3", "99999999999999999999"} {
		if s, err := ParseTime(in); err == nil {
			t.Errorf("ParseTime(%q) = %d, want an error", in, s)
		}
	}
}

func FuzzParseSize(f *testing.F) {
	for _, s := range []string{"4g", "100", "3kw", "512MB"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, in string) {
		s, err := ParseSize(in)
		if err != nil {
			return
		}
		again, err := ParseSize(s.String())
		if err != nil || again != s {
			t.Fatalf("%q -> %s -> %v, %v", in, s, again, err)
		}
	})
}
