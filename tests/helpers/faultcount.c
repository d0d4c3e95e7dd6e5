// SPDX-License-Identifier: GPL-2.0
/*
 * faultcount: make faults race for the same pages and report what the
 * module counted. Maps PAGES pages of /dev/mapdrv (MAP_SHARED, read-only),
 * then ROUNDS times: MADV_DONTNEED the whole mapping, and THREADS threads
 * read every page at once (released together by a barrier), so that several
 * faults arrive for each empty entry and all but one find it mapped.
 * Reads debugfs mapdrv/stats before and after the rounds and prints
 *   rounds R pages P threads T inserted I faults F
 * where I and F are the growth of pages_inserted and faults. The module
 * maps each page once a round whatever the mode, so I must be R * P: a
 * fault that found its entry present must not count a page as inserted.
 *
 * Usage: faultcount PAGES ROUNDS THREADS
 */
#include <fcntl.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

static volatile char *map;
static long pages, rounds, page;
static pthread_barrier_t start, done;

/* A counter of the stats file: the kernel's are 64-bit, so long long (long
 * is 32 bits on 32-bit ARM). */
static long long stat(const char *key)
{
	char name[64];
	long long value, found = -1;
	FILE *f = fopen("/sys/kernel/debug/mapdrv/stats", "r");

	if (!f) {
		perror("faultcount: /sys/kernel/debug/mapdrv/stats");
		exit(1);
	}
	while (fscanf(f, "%63s %lld", name, &value) == 2)
		if (!strcmp(name, key))
			found = value;
	fclose(f);
	if (found < 0) {
		fprintf(stderr, "faultcount: no %s in stats\n", key);
		exit(1);
	}
	return found;
}

static void *reader(void *arg)
{
	(void)arg;
	for (long r = 0; r < rounds; r++) {
		pthread_barrier_wait(&start);
		for (long i = 0; i < pages; i++)
			(void)map[i * page];
		pthread_barrier_wait(&done);
	}
	return NULL;
}

int main(int argc, char **argv)
{
	if (argc != 4) {
		fprintf(stderr, "usage: faultcount PAGES ROUNDS THREADS\n");
		return 2;
	}
	pages = strtol(argv[1], NULL, 10);
	rounds = strtol(argv[2], NULL, 10);
	long threads = strtol(argv[3], NULL, 10);
	if (pages < 1 || rounds < 1 || threads < 1 || threads > 64) {
		fprintf(stderr, "faultcount: bad arguments\n");
		return 2;
	}
	page = sysconf(_SC_PAGESIZE);
	int fd = open("/dev/mapdrv", O_RDONLY);
	if (fd < 0) {
		perror("faultcount: open /dev/mapdrv");
		return 1;
	}
	map = mmap(NULL, pages * page, PROT_READ, MAP_SHARED, fd, 0);
	if (map == MAP_FAILED) {
		perror("faultcount: mmap");
		return 1;
	}
	pthread_barrier_init(&start, NULL, threads + 1);
	pthread_barrier_init(&done, NULL, threads + 1);
	pthread_t t[64];
	for (long i = 0; i < threads; i++)
		if (pthread_create(&t[i], NULL, reader, NULL)) {
			fprintf(stderr, "faultcount: pthread_create failed\n");
			return 1;
		}
	long long inserted = stat("pages_inserted"), faults = stat("faults");
	for (long r = 0; r < rounds; r++) {
		if (madvise((void *)map, pages * page, MADV_DONTNEED)) {
			perror("faultcount: madvise");
			return 1;
		}
		pthread_barrier_wait(&start);
		pthread_barrier_wait(&done);
	}
	inserted = stat("pages_inserted") - inserted;
	faults = stat("faults") - faults;
	for (long i = 0; i < threads; i++)
		pthread_join(t[i], NULL);
	printf("rounds %ld pages %ld threads %ld inserted %lld faults %lld\n", rounds, pages, threads,
	       inserted, faults);
	return 0;
}
