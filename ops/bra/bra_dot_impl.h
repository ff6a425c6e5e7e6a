/* ops/bra/bra_dot_impl.h — the driver the SIMD routing-dot ukernels share
 * (contract in bra.h): channels where c0 + i is not a multiple of 8 (a run's
 * ragged head and tail) go through spr_bra_dot_acc, the 8-aligned body
 * through the file's register tiles of up to BRA_DOT_TILE a rows x
 * BRA_DOT_TILE b rows. Include it after defining
 *   dot_tile(acc, a, i0, ia, b, r0, rb, nr, off, body)   (ia, rb <= BRA_DOT_TILE)
 * and the macros BRA_DOT_TILE and BRA_DOT_FN (the ukernel's name). */
#ifndef BRA_DOT_TILE
#error "define BRA_DOT_TILE and BRA_DOT_FN before including bra_dot_impl.h"
#endif

void BRA_DOT_FN(double *acc, const float *const *a, size_t na, const float *const *b, size_t nr, size_t c0, size_t n) {
  enum { T = BRA_DOT_TILE };
  size_t head = (8 - (c0 & 7)) & 7;
  if (head > n) head = n;
  const size_t body = (n - head) & ~(size_t)7;
  if (head > 0)
    for (size_t i = 0; i < na; i++)
      for (size_t r = 0; r < nr; r++) spr_bra_dot_acc(acc + 8 * (i * nr + r), a[i], b[r], c0, head);
  if (body > 0) {
    size_t i0 = 0;
    for (; i0 + T <= na; i0 += T) {
      size_t r0 = 0;
      for (; r0 + T <= nr; r0 += T) dot_tile(acc, a, i0, T, b, r0, T, nr, head, body);
      for (; r0 < nr; r0++) dot_tile(acc, a, i0, T, b, r0, 1, nr, head, body);
    }
    for (; i0 < na; i0++) {
      size_t r0 = 0;
      for (; r0 + T <= nr; r0 += T) dot_tile(acc, a, i0, 1, b, r0, T, nr, head, body);
      for (; r0 < nr; r0++) dot_tile(acc, a, i0, 1, b, r0, 1, nr, head, body);
    }
  }
  const size_t done = head + body;
  if (done < n)
    for (size_t i = 0; i < na; i++)
      for (size_t r = 0; r < nr; r++)
        spr_bra_dot_acc(acc + 8 * (i * nr + r), a[i] + done, b[r] + done, c0 + done, n - done);
}
