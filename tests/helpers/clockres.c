// SPDX-License-Identifier: GPL-2.0
/*
 * clockres: how finely CLOCK_MONOTONIC steps, seen from user space.
 *
 * Reads the clock back to back for a while and prints one line:
 *   clockres: getres=<ns> min_step=<ns> median_step=<ns> zero_steps=<n> samples=<n>
 * min_step and median_step are the smallest and the median nonzero
 * difference between two consecutive reads. A jiffies clock shows steps of
 * 1/HZ (4000000 ns at HZ=250); a TSC clock shows steps well under 1000 ns.
 * Built statically by tests/run.sh and run in the test VM.
 */
#include <stdio.h>
#include <stdlib.h>
#include <time.h>

#define SAMPLES 20000

static long long now_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec * 1000000000LL + ts.tv_nsec;
}

static int cmp_ll(const void *a, const void *b)
{
	long long x = *(const long long *)a, y = *(const long long *)b;

	return (x > y) - (x < y);
}

int main(void)
{
	static long long steps[SAMPLES];
	struct timespec res;
	long long prev, t, deadline;
	long zero = 0, n = 0, reads = 0;

	clock_getres(CLOCK_MONOTONIC, &res);
	prev = now_ns();
	/* At most SAMPLES nonzero steps, and at most 2 s of reading. */
	deadline = prev + 2000000000LL;
	while (n < SAMPLES && prev < deadline) {
		t = now_ns();
		reads++;
		if (t < prev) {
			printf("clockres: CLOCK_MONOTONIC went back by %lld ns\n", prev - t);
			return 1;
		}
		if (t == prev)
			zero++;
		else
			steps[n++] = t - prev;
		prev = t;
	}
	if (n == 0) {
		printf("clockres: CLOCK_MONOTONIC did not advance in %ld reads\n", reads);
		return 1;
	}
	qsort(steps, n, sizeof(steps[0]), cmp_ll);
	/* long long: time_t and long are 32 bits on 32-bit ARM. */
	printf("clockres: getres=%lld min_step=%lld median_step=%lld zero_steps=%ld samples=%ld\n",
	       (long long)res.tv_sec * 1000000000LL + res.tv_nsec, steps[0], steps[n / 2], zero, n);
	return 0;
}
