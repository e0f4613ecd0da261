/* Runs glibc's getopt_long over argv with the option table of
 * glibc_test.go and prints what it returns, one line each:
 * "opt KEY ARG" (ARG "-" when none), "err" for '?', then "operand X" for
 * each operand after permutation. Messages go to stderr as glibc prints
 * them. argv[1] is the option string; one starting with '!' runs plain
 * getopt (no long options) with the rest. */
#include <getopt.h>
#include <stdio.h>

int main(int argc, char **argv) {
	static struct option longs[] = {
		{"all", no_argument, 0, 'a'},
		{"block-size", required_argument, 0, 'b'},
		{"classify", no_argument, 0, 'F'},
		{"color", optional_argument, 0, 256},
		{"colour", optional_argument, 0, 256},
		{"context", no_argument, 0, 'Z'},
		{"lines", required_argument, 0, 'n'},
		{"line-length", required_argument, 0, 'l'},
		{0, 0, 0, 0},
	};
	const char *optstring = argv[1];
	struct option *table = longs;
	if (optstring[0] == '!') {
		optstring++;
		table = NULL;
	}
	argv[1] = argv[0];
	argv++;
	argc--;
	int c;
	while ((c = getopt_long(argc, argv, optstring, table, NULL)) != -1) {
		if (c == '?') {
			printf("err\n");
			continue;
		}
		printf("opt %d %s\n", c, optarg ? optarg : "-");
	}
	for (int i = optind; i < argc; i++)
		printf("operand %s\n", argv[i]);
	return 0;
}
