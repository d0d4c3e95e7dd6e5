// SPDX-License-Identifier: GPL-2.0
/*
 * maphold: map /dev/mapdrv, close the file descriptor, touch every mapped
 * page, say "mapped" and keep the mapping until killed. The lifecycle suite
 * uses it to hold a mapping (and so the module) without an open fd.
 *
 * Usage: maphold [PAGES]   (default: 1 page)
 */
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/mman.h>
#include <unistd.h>

int main(int argc, char **argv)
{
	long pages = argc > 1 ? strtol(argv[1], NULL, 10) : 1;
	long page = sysconf(_SC_PAGESIZE);
	int fd = open("/dev/mapdrv", O_RDWR);

	if (fd < 0) {
		perror("maphold: open /dev/mapdrv");
		return 1;
	}
	volatile char *p = mmap(NULL, pages * page, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
	if (p == MAP_FAILED) {
		perror("maphold: mmap");
		return 1;
	}
	close(fd);
	for (long i = 0; i < pages; i++)
		(void)p[i * page];
	printf("mapped %ld pages\n", pages);
	fflush(stdout);
	for (;;)
		pause();
}
