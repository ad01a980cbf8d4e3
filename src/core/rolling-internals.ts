// Pieces shared by the rolling windows (rolling-stats.ts, rolling-time-window.ts): the precision constants of their
// running statistics and the float64 codec of their persisted state. Internal: not exported from the core entry.

/** Exact recomputation from the ring every this many windows of updates: bounds rounding drift over long runs
 * at an amortised cost of 2 / 16 of a pass over the ring per value. */
export const EXACT_RECOMPUTE_EVERY_WINDOWS = 16;

/** An update that leaves M2 below this fraction of its previous value cancelled nearly all of it (a value that
 * dominated the variance left the window): what is left carries rounding errors of the old M2, up to 2^-52 of it,
 * so the window recomputes exactly. 2^-24 keeps at least ~7 correct digits. */
export const SIGNIFICANCE_LOSS_LIMIT = 2 ** -24;

const littleEndian = new Uint8Array(new Float64Array([1]).buffer)[7] === 0x3f;

/** Float64 values as base64 of little-endian bytes (exact, compact in JSON). */
export function encodeFloat64(values: Float64Array): string {
  if (littleEndian) return Buffer.from(values.buffer, values.byteOffset, values.byteLength).toString("base64");
  const bytes = Buffer.alloc(values.length * 8);
  for (let i = 0; i < values.length; i++) bytes.writeDoubleLE(values[i], i * 8);
  return bytes.toString("base64");
}

/** Inverse of encodeFloat64; `field` names the state field in the error for a truncated text. */
export function decodeFloat64(text: string, field: string): Float64Array {
  const bytes = Buffer.from(text, "base64");
  if (bytes.length % 8 !== 0) throw new Error(`${field} is not a whole number of float64 values`);
  const values = new Float64Array(bytes.length / 8);
  if (littleEndian) new Uint8Array(values.buffer).set(bytes);
  else for (let i = 0; i < values.length; i++) values[i] = bytes.readDoubleLE(i * 8);
  return values;
}
