// CRC-32C (Castagnoli), as Kafka's record batches carry it, computed eight bytes per step ("slicing by 8": eight
// 256-entry tables, one lookup per byte but no dependency between the eight lookups of a step). kafkajs computes it
// one byte per step; measured here, this is about four times faster on the 16-64 KB batches a packed send makes.
// Pure: no kafkajs import.

const POLYNOMIAL = 0x82f63b78; // CRC-32C, reflected

function makeTables(): Int32Array[] {
  const tables = Array.from({ length: 8 }, () => new Int32Array(256));
  for (let byte = 0; byte < 256; byte++) {
    let crc = byte;
    for (let bit = 0; bit < 8; bit++) crc = crc & 1 ? (crc >>> 1) ^ POLYNOMIAL : crc >>> 1;
    tables[0][byte] = crc;
  }
  for (let byte = 0; byte < 256; byte++) {
    for (let table = 1; table < 8; table++) {
      const previous = tables[table - 1][byte];
      tables[table][byte] = (previous >>> 8) ^ tables[0][previous & 0xff];
    }
  }
  return tables;
}

const [T0, T1, T2, T3, T4, T5, T6, T7] = makeTables();

/** CRC-32C of the bytes, as an unsigned 32-bit number (the same value as kafkajs' crc32C). */
export function crc32c(bytes: Uint8Array): number {
  let crc = -1;
  let index = 0;
  const length = bytes.length;
  const whole = length - (length % 8);
  while (index < whole) {
    const low = crc ^ (bytes[index] | (bytes[index + 1] << 8) | (bytes[index + 2] << 16) | (bytes[index + 3] << 24));
    crc =
      T7[low & 0xff] ^
      T6[(low >>> 8) & 0xff] ^
      T5[(low >>> 16) & 0xff] ^
      T4[low >>> 24] ^
      T3[bytes[index + 4]] ^
      T2[bytes[index + 5]] ^
      T1[bytes[index + 6]] ^
      T0[bytes[index + 7]];
    index += 8;
  }
  while (index < length) crc = T0[(crc ^ bytes[index++]) & 0xff] ^ (crc >>> 8);
  return (crc ^ -1) >>> 0;
}
