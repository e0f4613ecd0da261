package cli

import (
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/jobsim/jobsim/fakeslurm"
)

var sinfoOpts = optSpec(`
	h,noheader o,format= N,Node p,partition= l,long>ignore a,all>ignore M,clusters=>ignore json
	help usage>help`)

// sinfoRow is one line of sinfo: a partition's nodes in one state.
type sinfoRow struct {
	part  fakeslurm.Partition
	state string // compact: idle, mix, alloc, down, drain, drng
	nodes []fakeslurm.Node
}

func compactNodeState(n fakeslurm.Node) string {
	base, drain := strings.CutSuffix(n.State, "+DRAIN")
	switch {
	case drain && n.AllocCPUs > 0:
		return "drng"
	case drain:
		return "drain"
	}
	switch base {
	case "ALLOCATED":
		return "alloc"
	case "MIXED":
		return "mix"
	case "DOWN":
		return "down*" // not responding, as sinfo marks a failed node
	}
	return "idle"
}

func longNodeState(compact string) string {
	switch compact {
	case "alloc":
		return "allocated"
	case "mix":
		return "mixed"
	case "drain":
		return "drained"
	case "drng":
		return "draining"
	}
	return compact
}

func (r *run) sinfo() error {
	ps, _, err := getopt("sinfo", sinfoOpts, r.inv.Args, false)
	if err != nil {
		fmt.Fprintf(&r.stderr, "%v\nTry \"sinfo --help\" for more information\n", err)
		return exit(1)
	}
	header, byNode := true, false
	format := ""
	var only []string
	for _, p := range ps {
		switch p.key {
		case "h":
			header = false
		case "o":
			format = p.val
		case "N":
			byNode = true
		case "p":
			only = append(only, splitList(p.val)...)
		case "help":
			r.stdout.WriteString("Usage: sinfo [OPTIONS]\n")
			return nil
		case "json":
			return r.sinfoJSON()
		}
	}
	if code, done := r.controllerDown(); done {
		return exit(code)
	}
	parts, err := r.b.Partitions(r.ctx)
	if err != nil {
		fmt.Fprintf(&r.stderr, "slurm_load_partitions: %s\n", errText(err))
		return exit(1)
	}
	nodes, err := r.b.Nodes(r.ctx)
	if err != nil {
		fmt.Fprintf(&r.stderr, "slurm_load_node: %s\n", errText(err))
		return exit(1)
	}
	byName := map[string]fakeslurm.Node{}
	for _, n := range nodes {
		byName[n.Name] = n
	}
	var rows []sinfoRow
	for _, p := range parts {
		if len(only) > 0 && !contains(only, p.Name) {
			continue
		}
		if byNode {
			for _, name := range p.Nodes {
				n := byName[name]
				rows = append(rows, sinfoRow{part: p, state: compactNodeState(n), nodes: []fakeslurm.Node{n}})
			}
			continue
		}
		idx := map[string]int{}
		for _, name := range p.Nodes {
			n := byName[name]
			st := compactNodeState(n)
			if i, ok := idx[st]; ok {
				rows[i].nodes = append(rows[i].nodes, n)
				continue
			}
			idx[st] = len(rows)
			rows = append(rows, sinfoRow{part: p, state: st, nodes: []fakeslurm.Node{n}})
		}
	}
	pw, nw := 9, 8
	for _, p := range parts {
		pw = max(pw, len(p.Name)+1)
	}
	for _, n := range nodes {
		nw = max(nw, len(n.Name))
	}
	var fields []field
	switch {
	case format != "":
		fields = parseFormat(strings.ReplaceAll(strings.ReplaceAll(format, "%#P", "%"+strconv.Itoa(pw)+"P"), "%#N", "%"+strconv.Itoa(nw)+"N"))
	case byNode:
		fields = parseFormat(fmt.Sprintf("%%%dN %%.6D %%.%dP %%6t", nw, pw))
	default:
		fields = parseFormat(fmt.Sprintf("%%%dP %%.5a %%.10l %%.6D %%.6t %%N", pw))
	}
	var buf []byte
	if header {
		buf = sinfoLine(buf[:0], fields, nil)
		r.stdout.Write(buf)
	}
	for i := range rows {
		buf = sinfoLine(buf[:0], fields, &rows[i])
		r.stdout.Write(buf)
	}
	return nil
}

var sinfoHeaders = map[byte]string{
	'P': "PARTITION", 'R': "PARTITION", 'a': "AVAIL", 'l': "TIMELIMIT", 'D': "NODES", 't': "STATE",
	'T': "STATE", 'N': "NODELIST", 'c': "CPUS", 'm': "MEMORY", 'C': "CPUS(A/I/O/T)",
}

func sinfoLine(buf []byte, fields []field, row *sinfoRow) []byte {
	for _, f := range fields {
		if f.spec == 0 {
			buf = append(buf, f.lit...)
			continue
		}
		v := sinfoHeaders[f.spec]
		if row != nil {
			v = sinfoValue(f.spec, row)
		}
		buf = pad(buf, v, f.width, f.right)
	}
	return append(buf, '\n')
}

func sinfoValue(spec byte, row *sinfoRow) string {
	names := make([]string, len(row.nodes))
	cpus, alloc, other := 0, 0, 0
	var mem int64
	for i, n := range row.nodes {
		names[i] = n.Name
		cpus += n.CPUs
		alloc += n.AllocCPUs
		mem = n.MemMB
		if row.state == "down*" || row.state == "drain" {
			other += n.CPUs - n.AllocCPUs
		}
	}
	switch spec {
	case 'P':
		if row.part.Default {
			return row.part.Name + "*"
		}
		return row.part.Name
	case 'R':
		return row.part.Name
	case 'a':
		if row.part.Up {
			return "up"
		}
		return "down"
	case 'l':
		if row.part.MaxTime == fakeslurm.Unlimited {
			return "infinite"
		}
		return elapsed(row.part.MaxTime)
	case 'D':
		return strconv.Itoa(len(row.nodes))
	case 't':
		return row.state
	case 'T':
		return longNodeState(row.state)
	case 'N':
		return fakeslurm.Hostlist(names)
	case 'c':
		if len(row.nodes) > 0 {
			return strconv.Itoa(row.nodes[0].CPUs)
		}
		return "0"
	case 'm':
		return strconv.FormatInt(mem, 10)
	case 'C':
		return fmt.Sprintf("%d/%d/%d/%d", alloc, cpus-alloc-other, other, cpus)
	}
	return ""
}

// sinceMidnight is sacct's default start: 00:00 of the current day.
func sinceMidnight(now time.Time) time.Time {
	y, m, d := now.Date()
	return time.Date(y, m, d, 0, 0, 0, 0, now.Location())
}
