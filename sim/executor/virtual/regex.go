package virtual

import (
	"fmt"
	"regexp"
	"strings"
)

// This file is the one translation of POSIX regular expressions (the basic
// and extended syntax of grep and sed, with GNU's extensions) to Go's
// regexp, compiled for leftmost-longest matching as POSIX requires: of the
// matches starting at the leftmost position the longest wins, so
// `echo abcd | sed 's/a\|ab/X/'` gives Xcd as with GNU, where Go's default
// leftmost-first would give Xbcd.
//
// Approximations: back-references in a pattern (\1 to \9) are refused with
// errBackref (Go's automata cannot match them); submatches follow Go's
// rules once the whole match is the longest (GNU's agree on the cases the
// GNU comparison test holds, such as (a|ab)(c|bcd)(d*) on abcd, where
// strict POSIX subexpression rules would differ); equivalence classes
// [=a=] and collating symbols [.a.] are refused.

// errBackref is the message for a pattern with a back-reference.
const errBackref = "back-references (\\1 to \\9) in a pattern are not supported by the virtual host"

// compilePOSIX compiles a POSIX regular expression: extended (ERE) when ere
// is true, basic (BRE) otherwise; icase ignores case.
func compilePOSIX(pattern string, ere, icase bool) (*regexp.Regexp, error) {
	expr, err := posixToRE2(pattern, ere)
	if err != nil {
		return nil, err
	}
	return compileRE2(expr, icase)
}

// compileRE2 compiles translated syntax for leftmost-longest matching.
func compileRE2(expr string, icase bool) (*regexp.Regexp, error) {
	if icase {
		expr = "(?i)" + expr
	}
	re, err := regexp.Compile(expr)
	if err != nil {
		return nil, fmt.Errorf("%s", strings.TrimPrefix(err.Error(), "error parsing regexp: "))
	}
	re.Longest()
	return re, nil
}

// posixToRE2 translates a BRE or ERE to Go syntax.
//
// In a BRE, \( \) \{ \} \| \+ \? are the operators (the last three GNU
// extensions) and ( ) { } | + ? are literals; * at the start of the
// pattern or of a group is literal; ^ is an anchor only at the start of
// the pattern or of a group or alternative, $ only at their end. Both
// syntaxes take GNU's \< \> \b \B \w \W \s \S \` \'. Inside a bracket
// expression a backslash is an ordinary character.
func posixToRE2(p string, ere bool) (string, error) {
	var b strings.Builder
	// atStart: the next character begins the pattern, a group or an
	// alternative (where BRE's * is literal and ^ an anchor).
	atStart := true
	for i := 0; i < len(p); i++ {
		ch := p[i]
		start := atStart
		atStart = false
		switch {
		case ch == '\\' && i+1 < len(p):
			i++
			n := p[i]
			switch {
			case n >= '1' && n <= '9':
				return "", fmt.Errorf("%s", errBackref)
			case n == '<' || n == '>':
				b.WriteString(`\b`)
			case n == '`':
				b.WriteString(`\A`)
			case n == '\'':
				b.WriteString(`\z`)
			case strings.IndexByte("bBwWsS", n) >= 0:
				b.WriteByte('\\')
				b.WriteByte(n)
			case !ere && strings.IndexByte("(){}|+?", n) >= 0:
				b.WriteByte(n)
				atStart = n == '(' || n == '|'
			case n == 'n':
				b.WriteString(`\n`)
			case n == 't':
				b.WriteString(`\t`)
			default:
				b.WriteString(regexp.QuoteMeta(string(n)))
			}
		case ch == '\\':
			return "", fmt.Errorf("trailing backslash (\\)")
		case ch == '[':
			j, class, err := bracket(p, i)
			if err != nil {
				return "", err
			}
			b.WriteString(class)
			i = j - 1
		case !ere && strings.IndexByte("(){}|+?", ch) >= 0:
			b.WriteByte('\\')
			b.WriteByte(ch)
		case ch == '*' && start:
			b.WriteString(`\*`)
		case !ere && ch == '^' && !start:
			b.WriteString(`\^`)
		case !ere && ch == '$' && !(i == len(p)-1 || strings.HasPrefix(p[i+1:], `\)`) || strings.HasPrefix(p[i+1:], `\|`)):
			b.WriteString(`\$`)
		case ere && (ch == '(' || ch == '|'):
			b.WriteByte(ch)
			atStart = true
		case ch == '^':
			b.WriteByte(ch)
			atStart = start
		default:
			b.WriteByte(ch)
		}
	}
	return b.String(), nil
}

// bracket translates the bracket expression starting at p[i] and returns
// the index after it.
func bracket(p string, i int) (int, string, error) {
	var b strings.Builder
	b.WriteByte('[')
	j := i + 1
	if j < len(p) && p[j] == '^' {
		b.WriteByte('^')
		j++
	}
	first := true
	for j < len(p) {
		c := p[j]
		switch {
		case c == ']' && !first:
			b.WriteByte(']')
			return j + 1, b.String(), nil
		case c == '[' && j+1 < len(p) && strings.IndexByte(":.=", p[j+1]) >= 0:
			end := strings.Index(p[j+2:], string(p[j+1])+"]")
			if end < 0 {
				return 0, "", fmt.Errorf("unmatched [, [^, [:, [., or [=")
			}
			if p[j+1] != ':' {
				return 0, "", fmt.Errorf("collating symbols and equivalence classes ([.x.], [=x=]) are not supported by the virtual host")
			}
			b.WriteString(p[j : j+2+end+2])
			j += 2 + end + 2
		case c == '\\' || c == '[' || c == ']':
			b.WriteByte('\\')
			b.WriteByte(c)
			j++
		default:
			b.WriteByte(c)
			j++
		}
		first = false
	}
	return 0, "", fmt.Errorf("unmatched [, [^, [:, [., or [=")
}
