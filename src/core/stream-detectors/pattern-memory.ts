// The patterns a contextual-novelty detector has seen. A pattern is a level on one grid together with its context:
// the levels of the rows just before (1 to maxOrder of them), or the part of the day. With the usual grids the
// possible patterns are few (2128 for levels 6, 8, 10, 12, order 1 and 24 day parts), so each gets one bit: about
// 270 bytes per sensor-metric, where the same patterns as text keys in a Set took some 65 KB, and a state that is
// one short base64 string. Longer orders or finer grids have too many possible patterns for a bitset (more than
// MAX_PATTERN_BITS) and keep text keys. Both give the same answers: a pattern is new exactly once.

/** The most possible patterns numbered as bits (128 KB per sensor-metric); beyond, patterns are text keys. */
export const MAX_PATTERN_BITS = 1 << 20;

export interface PatternLayout {
  /** Level count of each grid; a level is -1 (below the range) to the count (above it). */
  grids: readonly number[];
  maxOrder: number;
  /** 0: no time-of-day patterns. */
  dayParts: number;
}

export interface PatternMemory {
  /**
   * Learns "previous levels → level" for each context length 1..order, where `recent` holds the grid's previous
   * levels, most recent last, and `order` is how many of them there are. Returns how many of those were new.
   */
  learnTransitions(grid: number, level: number, recent: readonly number[], order: number): number;
  /** Learns "level at this part of the day"; true when it was new. */
  learnDayPart(grid: number, dayPart: number, level: number): boolean;
  /** For a snapshot: the patterns as text keys (`seen`) or as the base64 bitset (`seenBits`). */
  toState(): { seen: string[] } | { seenBits: string };
}

/** Text keys: "p2,p1,g|l" for the previous levels p2, p1 (oldest first) then grid g and level l; "g@d|l" for day part d. */
export class PatternKeys implements PatternMemory {
  private readonly seen = new Set<string>();

  constructor(keys: readonly string[] = []) {
    for (const key of keys) this.seen.add(key);
  }

  learnTransitions(grid: number, level: number, recent: readonly number[], order: number): number {
    let unseen = 0;
    let key = `${grid}|${level}`;
    for (let length = 1; length <= order; length++) {
      key = `${recent[order - length]},${key}`;
      if (this.learn(key)) unseen++;
    }
    return unseen;
  }

  learnDayPart(grid: number, dayPart: number, level: number): boolean {
    return this.learn(`${grid}@${dayPart}|${level}`);
  }

  toState(): { seen: string[] } {
    return { seen: [...this.seen] };
  }

  private learn(key: string): boolean {
    if (this.seen.has(key)) return false;
    this.seen.add(key);
    return true;
  }
}

/**
 * One bit per possible pattern. Per grid, the transitions of each context length, then the day parts. A level is
 * stored shifted by one (0 for -1) as a digit of base `base` (the largest level count + 2): a transition of length
 * n is level + base·previous₁ + base²·previous₂ + … within its block of base^(n+1) bits.
 */
interface BitBlocks {
  base: number;
  /** transitionStart[grid][length - 1]: first bit of that grid's transitions of that length. */
  transitionStart: number[][];
  dayStart: number[];
  total: number;
}

/** Where each grid's blocks of bits start, or null as soon as they would pass `maxBits`. */
function bitBlocks(layout: PatternLayout, maxBits: number): BitBlocks | null {
  const base = Math.max(...layout.grids) + 2;
  const transitionStart: number[][] = [];
  const dayStart: number[] = [];
  let total = 0;
  for (let grid = 0; grid < layout.grids.length; grid++) {
    const starts: number[] = [];
    for (let length = 1; length <= layout.maxOrder; length++) {
      starts.push(total);
      total += base ** (length + 1);
      if (total > maxBits) return null;
    }
    transitionStart.push(starts);
    dayStart.push(total);
    total += layout.dayParts * base;
  }
  return total > maxBits ? null : { base, transitionStart, dayStart, total };
}

export class PatternBits implements PatternMemory {
  private readonly base: number;
  private readonly transitionStart: number[][];
  private readonly dayStart: number[];
  private readonly bits: Uint8Array;

  /** The bits `layout` needs, or null when it has too many possible patterns for a bitset. */
  static size(layout: PatternLayout, maxBits = MAX_PATTERN_BITS): number | null {
    return bitBlocks(layout, maxBits)?.total ?? null;
  }

  /** A bitset for `layout`, or null when it has more than `maxBits` possible patterns. */
  static forLayout(layout: PatternLayout, maxBits = MAX_PATTERN_BITS): PatternBits | null {
    const blocks = bitBlocks(layout, maxBits);
    return blocks === null ? null : new PatternBits(layout, blocks);
  }

  private constructor(
    private readonly layout: PatternLayout,
    blocks: BitBlocks,
  ) {
    this.base = blocks.base;
    this.transitionStart = blocks.transitionStart;
    this.dayStart = blocks.dayStart;
    this.bits = new Uint8Array(Math.ceil(blocks.total / 8));
  }

  learnTransitions(grid: number, level: number, recent: readonly number[], order: number): number {
    const starts = this.transitionStart[grid];
    const base = this.base;
    let index = level + 1;
    let weight = base;
    let unseen = 0;
    for (let length = 1; length <= order; length++) {
      index += weight * (recent[order - length] + 1);
      weight *= base;
      if (this.learn(starts[length - 1] + index)) unseen++;
    }
    return unseen;
  }

  learnDayPart(grid: number, dayPart: number, level: number): boolean {
    return this.learn(this.dayStart[grid] + dayPart * this.base + level + 1);
  }

  toState(): { seenBits: string } {
    return { seenBits: Buffer.from(this.bits.buffer, this.bits.byteOffset, this.bits.byteLength).toString("base64") };
  }

  /** Takes over a bitset of `toState()`; throws when it is not one of this layout. */
  loadBits(text: unknown): void {
    if (typeof text !== "string") throw new TypeError("contextual-novelty snapshot has malformed patterns (seenBits is not a string)");
    const bytes = Buffer.from(text, "base64");
    if (bytes.length !== this.bits.length) {
      throw new TypeError(`contextual-novelty snapshot has ${bytes.length} bytes of patterns, this detector's layout has ${this.bits.length}`);
    }
    this.bits.set(bytes);
  }

  /** Takes over the text keys of PatternKeys (a version 1 state); throws at the first key that is not a pattern of this layout. */
  loadKeys(keys: readonly string[]): void {
    const indexes = keys.map((key) => this.indexOfKey(key));
    this.bits.fill(0);
    for (const index of indexes) this.learn(index);
  }

  private indexOfKey(key: string): number {
    const malformed = () => new TypeError(`contextual-novelty snapshot has a malformed pattern ${JSON.stringify(key)}`);
    const bar = key.lastIndexOf("|");
    if (bar < 0) throw malformed();
    const level = this.levelFrom(key.slice(bar + 1), malformed);
    const head = key.slice(0, bar);
    const at = head.indexOf("@");
    if (at >= 0) {
      const grid = this.gridFrom(head.slice(0, at), malformed);
      const dayPart = Number(head.slice(at + 1));
      if (!Number.isInteger(dayPart) || dayPart < 0 || dayPart >= this.layout.dayParts || level > this.layout.grids[grid]) throw malformed();
      return this.dayStart[grid] + dayPart * this.base + level + 1;
    }
    const parts = head.split(",");
    const grid = this.gridFrom(parts.pop()!, malformed);
    const length = parts.length;
    if (length < 1 || length > this.layout.maxOrder || level > this.layout.grids[grid]) throw malformed();
    let index = level + 1;
    let weight = this.base;
    for (let back = 1; back <= length; back++) {
      const previous = this.levelFrom(parts[length - back], malformed);
      if (previous > this.layout.grids[grid]) throw malformed();
      index += weight * (previous + 1);
      weight *= this.base;
    }
    return this.transitionStart[grid][length - 1] + index;
  }

  private gridFrom(text: string, malformed: () => Error): number {
    const grid = Number(text);
    if (text === "" || !Number.isInteger(grid) || grid < 0 || grid >= this.layout.grids.length) throw malformed();
    return grid;
  }

  private levelFrom(text: string, malformed: () => Error): number {
    const level = Number(text);
    if (text === "" || !Number.isInteger(level) || level < -1) throw malformed();
    return level;
  }

  private learn(index: number): boolean {
    const byte = index >>> 3;
    const mask = 1 << (index & 7);
    if ((this.bits[byte] & mask) !== 0) return false;
    this.bits[byte] |= mask;
    return true;
  }
}
