/* Why this file exists: issue 14's sparse-conv ceiling probe. It times the inner column loop
 * of kernels/spmm.rs (per non-zero: one 512-bit load per 16 positions, one broadcast weight,
 * multiply-adds into two alternating accumulator sets) on data that stays in L1, so the
 * kernel's measured rate (probe_spmm, bench_spmm) can be read against what the loop itself
 * can reach on this host: aligned vs misaligned loads, weights as constants vs read with
 * their offsets from a table as the kernel does.
 * Build and run: gcc -O2 -mavx512f -mfma scripts/probe_spmm_ceiling.c -o /tmp/ceil &&
 *                /work/bin/quiet /tmp/ceil
 * Prints G multiply-adds per second (1 thread). */
#include <immintrin.h>
#include <stdio.h>
#include <time.h>

static double now(void) {
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return t.tv_sec + t.tv_nsec * 1e-9;
}

static float buf[8192] __attribute__((aligned(64)));
/* 64 columns: (offset in floats, weight bits) as the kernel's table holds them. */
static unsigned tab[128];

#define COLS 64
#define FMA4(acc, p, w)                                                        \
    acc##0 = _mm512_fmadd_ps(w, _mm512_loadu_ps((p)), acc##0);                 \
    acc##1 = _mm512_fmadd_ps(w, _mm512_loadu_ps((p) + 16), acc##1);            \
    acc##2 = _mm512_fmadd_ps(w, _mm512_loadu_ps((p) + 32), acc##2);            \
    acc##3 = _mm512_fmadd_ps(w, _mm512_loadu_ps((p) + 48), acc##3);

/* Two columns per step, four vectors each (one 64-position tile), weight from the table. */
__attribute__((noinline)) static float run_table(int shift, long iters) {
    __m512 a0 = _mm512_setzero_ps(), a1 = a0, a2 = a0, a3 = a0;
    __m512 b0 = a0, b1 = a0, b2 = a0, b3 = a0;
    const float *base = buf + shift;
    for (long it = 0; it < iters; it++) {
        for (int c = 0; c < COLS; c += 2) {
            const unsigned *e = tab + 2 * c;
            const float *p = base + e[0], *q = base + e[2];
            __m512 w0 = _mm512_set1_ps(*(const float *)&e[1]);
            __m512 w1 = _mm512_set1_ps(*(const float *)&e[3]);
            FMA4(a, p, w0)
            FMA4(b, q, w1)
        }
        __asm__ volatile("" : "+v"(a0), "+v"(b0));
    }
    __m512 s = _mm512_add_ps(_mm512_add_ps(_mm512_add_ps(a0, a1), _mm512_add_ps(a2, a3)),
                             _mm512_add_ps(_mm512_add_ps(b0, b1), _mm512_add_ps(b2, b3)));
    return _mm512_reduce_add_ps(s);
}

/* The same loop with one constant weight (no table words, no broadcasts). */
__attribute__((noinline)) static float run_const(int shift, long iters) {
    __m512 a0 = _mm512_setzero_ps(), a1 = a0, a2 = a0, a3 = a0;
    __m512 b0 = a0, b1 = a0, b2 = a0, b3 = a0;
    const __m512 w = _mm512_set1_ps(1e-9f);
    const float *base = buf + shift;
    for (long it = 0; it < iters; it++) {
        for (int c = 0; c < COLS; c += 2) {
            const float *p = base + tab[2 * c], *q = base + tab[2 * c + 2];
            FMA4(a, p, w)
            FMA4(b, q, w)
        }
        __asm__ volatile("" : "+v"(a0), "+v"(b0));
    }
    __m512 s = _mm512_add_ps(_mm512_add_ps(_mm512_add_ps(a0, a1), _mm512_add_ps(a2, a3)),
                             _mm512_add_ps(_mm512_add_ps(b0, b1), _mm512_add_ps(b2, b3)));
    return _mm512_reduce_add_ps(s);
}

int main(void) {
    float wv = 1e-9f;
    for (int c = 0; c < COLS; c++) {
        tab[2 * c] = (unsigned)((c * 37 % 96) * 64); /* 64-float aligned offsets, 24 KiB span */
        tab[2 * c + 1] = *(unsigned *)&wv;
    }
    const long iters = 400000;
    const double macs = (double)iters * COLS * 64;
    float sink = 0;
    for (int shift = 0; shift <= 8; shift++) {
        if (shift != 0 && shift != 1 && shift != 3 && shift != 8)
            continue;
        double best_c = 1e9, best_t = 1e9;
        for (int rep = 0; rep < 5; rep++) {
            double t = now();
            sink += run_const(shift, iters);
            t = now() - t;
            best_c = t < best_c ? t : best_c;
            t = now();
            sink += run_table(shift, iters);
            t = now() - t;
            best_t = t < best_t ? t : best_t;
        }
        printf("shift %d floats: constant weight %.1f GMAC/s, table weights %.1f GMAC/s\n", shift,
               macs / best_c / 1e9, macs / best_t / 1e9);
    }
    printf("(checksum %g)\n", sink);
    return 0;
}
