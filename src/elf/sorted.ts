/** Binary search over ascending values (addresses), shared by the lookups that map an address to what covers it. */

/** Index of the last of the ascending `values` that is <= x, or -1 when every one is above it. */
export function lastAtOrBelow(values: ArrayLike<number>, x: number): number {
  let lo = 0;
  let hi = values.length - 1;
  let k = -1;
  while (lo <= hi) {
    const mid = (lo + hi) >> 1;
    if (values[mid]! <= x) {
      k = mid;
      lo = mid + 1;
    } else hi = mid - 1;
  }
  return k;
}
