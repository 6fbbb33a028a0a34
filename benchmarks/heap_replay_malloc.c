/* Replay slot-based allocation events through the host's malloc/free (glibc's, usually).
 *
 *   heap_replay_malloc EVENTS.bin NSLOTS REPEAT
 *
 * EVENTS.bin holds little-endian int64 events as vm32.heap.replay.compact_events writes
 * them: e >= 0 allocates (e & 0xFFFFFFFF) 32-bit words into slot e >> 32, e < 0 frees the
 * block in slot -e - 1.  Each of REPEAT runs replays every event (freeing what is still
 * live afterwards, untimed) and prints one line:
 *
 *   ns_per_op=<wall ns per event> footprint=<bytes> failed=<count>
 *
 * footprint: the largest extent malloc used for the replay's blocks: mallinfo2's arena
 * (the sbrk'd heap) less keepcost (its unused top) plus hblkhd (the mmap'd blocks), less
 * that extent before the replay (the events, the slot table), sampled every 4096 events
 * with the clock stopped.  Only the loop is timed, as in the compiled replay it is compared with.
 */
#define _GNU_SOURCE
#include <malloc.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <time.h>

static double now(void)
{
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return t.tv_sec + 1e-9 * t.tv_nsec;
}

static size_t held(void)
{
    struct mallinfo2 m = mallinfo2();
    return m.arena - m.keepcost + m.hblkhd;
}

int main(int argc, char **argv)
{
    if (argc != 4) {
        fprintf(stderr, "usage: %s EVENTS.bin NSLOTS REPEAT\n", argv[0]);
        return 2;
    }
    FILE *f = fopen(argv[1], "rb");
    if (!f) {
        perror(argv[1]);
        return 1;
    }
    fseek(f, 0, SEEK_END);
    long n = ftell(f) / 8;
    fseek(f, 0, SEEK_SET);
    int64_t *ev = malloc(n * 8);
    if (!ev || fread(ev, 8, n, f) != (size_t)n) {
        fprintf(stderr, "%s: cannot read %ld events\n", argv[1], n);
        return 1;
    }
    fclose(f);
    long nslots = atol(argv[2]);
    int repeat = atoi(argv[3]);
    void **slot = calloc(nslots > 0 ? nslots : 1, sizeof(void *));
    for (int r = 0; r < repeat; r++) {
        size_t before = held(), peak = before;
        long failed = 0;
        double elapsed = 0, start = now();
        for (long i = 0; i < n; i++) {
            int64_t e = ev[i];
            if (e >= 0) {
                void *p = malloc((size_t)(e & 0xFFFFFFFF) * 4);
                slot[e >> 32] = p;
                failed += p == NULL;
            } else {
                free(slot[-e - 1]);
                slot[-e - 1] = NULL;
            }
            if ((i & 0xFFF) == 0xFFF) {
                elapsed += now() - start;
                size_t h = held();
                peak = h > peak ? h : peak;
                start = now();
            }
        }
        elapsed += now() - start;
        size_t h = held();
        peak = h > peak ? h : peak;
        for (long s = 0; s < nslots; s++) {
            free(slot[s]);
            slot[s] = NULL;
        }
        printf("ns_per_op=%.3f footprint=%zu failed=%ld\n", 1e9 * elapsed / (n ? n : 1), peak - before, failed);
        fflush(stdout);
    }
    return 0;
}
