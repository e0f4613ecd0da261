package cli

import (
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/jobsim/jobsim/fakeslurm"
)

// ParseTimeLimit reads a time limit in Slurm's formats (time_str2mins):
// "minutes", "minutes:seconds", "hours:minutes:seconds", "days-hours",
// "days-hours:minutes", "days-hours:minutes:seconds", or INFINITE /
// UNLIMITED / -1 (and 0: no limit). Seconds are rounded up to a whole
// minute, as slurmctld keeps limits in minutes.
func ParseTimeLimit(s string) (time.Duration, error) {
	switch strings.ToUpper(s) {
	case "INFINITE", "UNLIMITED", "-1":
		return fakeslurm.Unlimited, nil
	case "":
		return 0, fmt.Errorf("empty time limit")
	}
	days := 0
	rest := s
	if d, r, ok := strings.Cut(s, "-"); ok {
		n, err := atoiStrict(d)
		if err != nil {
			return 0, fmt.Errorf("time limit %q: %w", s, err)
		}
		days, rest = n, r
	}
	parts := strings.Split(rest, ":")
	if len(parts) > 3 {
		return 0, fmt.Errorf("time limit %q: too many fields", s)
	}
	nums := make([]int, len(parts))
	for i, p := range parts {
		n, err := atoiStrict(p)
		if err != nil {
			return 0, fmt.Errorf("time limit %q: %w", s, err)
		}
		nums[i] = n
	}
	var h, m, sec int
	if strings.Contains(s, "-") {
		// days-hours[:minutes[:seconds]]
		h = nums[0]
		if len(nums) > 1 {
			m = nums[1]
		}
		if len(nums) > 2 {
			sec = nums[2]
		}
	} else {
		switch len(nums) {
		case 1:
			m = nums[0]
		case 2:
			m, sec = nums[0], nums[1]
		case 3:
			h, m, sec = nums[0], nums[1], nums[2]
		}
	}
	total := ((days*24+h)*60+m)*60 + sec
	mins := (total + 59) / 60
	if mins == 0 {
		return fakeslurm.Unlimited, nil
	}
	return time.Duration(mins) * time.Minute, nil
}

func atoiStrict(s string) (int, error) {
	if s == "" {
		return 0, fmt.Errorf("empty field")
	}
	for _, c := range s {
		if c < '0' || c > '9' {
			return 0, fmt.Errorf("%q is not a number", s)
		}
	}
	n, err := strconv.Atoi(s)
	if err != nil {
		return 0, err
	}
	return n, nil
}

// elapsed prints a duration as squeue's TIME column does (secs2time_str):
// M:SS, H:MM:SS or D-HH:MM:SS.
func elapsed(d time.Duration) string {
	s := int64(d / time.Second)
	if s < 0 {
		s = 0
	}
	days, h, m, sec := s/86400, s/3600%24, s/60%60, s%60
	switch {
	case days > 0:
		return fmt.Sprintf("%d-%02d:%02d:%02d", days, h, m, sec)
	case h > 0:
		return fmt.Sprintf("%d:%02d:%02d", h, m, sec)
	}
	return fmt.Sprintf("%d:%02d", m, sec)
}

// limitText prints a time limit as squeue does (UNLIMITED or elapsed).
func limitText(d time.Duration) string {
	if d == fakeslurm.Unlimited {
		return "UNLIMITED"
	}
	return elapsed(d)
}

// clockTime prints a duration as scontrol does: HH:MM:SS or D-HH:MM:SS.
func clockTime(d time.Duration) string {
	s := int64(d / time.Second)
	if s < 0 {
		s = 0
	}
	days, h, m, sec := s/86400, s/3600%24, s/60%60, s%60
	if days > 0 {
		return fmt.Sprintf("%d-%02d:%02d:%02d", days, h, m, sec)
	}
	return fmt.Sprintf("%02d:%02d:%02d", h, m, sec)
}

// clockLimit prints a time limit as scontrol does.
func clockLimit(d time.Duration) string {
	if d == fakeslurm.Unlimited {
		return "UNLIMITED"
	}
	return clockTime(d)
}

// ParseMem reads --mem: a number of megabytes with an optional K, M, G or T
// suffix, rounded up to a whole megabyte.
func ParseMem(s string) (int64, error) {
	if s == "" {
		return 0, fmt.Errorf("empty memory size")
	}
	mult := int64(1 << 20)
	num := s
	switch strings.ToUpper(s[len(s)-1:]) {
	case "K":
		mult, num = 1<<10, s[:len(s)-1]
	case "M":
		num = s[:len(s)-1]
	case "G":
		mult, num = 1<<30, s[:len(s)-1]
	case "T":
		mult, num = 1<<40, s[:len(s)-1]
	}
	n, err := strconv.ParseInt(num, 10, 64)
	if err != nil || n < 0 {
		return 0, fmt.Errorf("invalid memory size %q", s)
	}
	b := n * mult
	return (b + (1 << 20) - 1) >> 20, nil
}
