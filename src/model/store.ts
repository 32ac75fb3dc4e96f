/**
 * The explorer's set of visited states (see state.ts for what a state's bytes mean).
 *
 * States live back to back in one byte arena, numbered in the order they were added (breadth-first order,
 * so the initial state is 0); an open-addressing table of indices finds them by an FNV-1a hash of their
 * bytes. Far less memory and garbage than a Map of string keys. Each state also records the state it was
 * first reached from (its parent), from which a trace is rebuilt (replay.ts).
 */
export class StateStore {
  private arena = new Uint8Array(1 << 20);
  private used = 0;
  private offs = new Int32Array(1 << 16);
  private table = new Int32Array(1 << 16);
  private mask = (1 << 16) - 1;
  private parents = new Int32Array(1 << 16);
  /** States stored. */
  count = 0;

  private static hash(s: Uint8Array): number {
    let h = 0x811c9dc5;
    for (let i = 0; i < s.length; i++) {
      h ^= s[i]!;
      h = Math.imul(h, 0x01000193);
    }
    h ^= h >>> 15;
    return Math.imul(h, 0x2c1b3c6d) >>> 0;
  }

  /** The bytes of state i (a view into the arena: copy before changing them). */
  get(i: number): Uint8Array {
    return this.arena.subarray(this.offs[i]!, this.offs[i + 1]!);
  }

  private same(i: number, s: Uint8Array): boolean {
    const o = this.offs[i]!;
    if (this.offs[i + 1]! - o !== s.length) return false;
    const a = this.arena;
    for (let k = 0; k < s.length; k++) if (a[o + k] !== s[k]) return false;
    return true;
  }

  /** Index of s if present, else -1. */
  find(s: Uint8Array): number {
    let h = StateStore.hash(s) & this.mask;
    for (;;) {
      const e = this.table[h]!;
      if (e === 0) return -1;
      if (this.same(e - 1, s)) return e - 1;
      h = (h + 1) & this.mask;
    }
  }

  /** The state state i was first reached from (-1 for the initial state). */
  parent(i: number): number {
    return this.parents[i]!;
  }

  /** Adds s, reached from state `parent`; returns its index, or -1 when it was already there. */
  add(s: Uint8Array, parent: number): number {
    let h = StateStore.hash(s) & this.mask;
    for (;;) {
      const e = this.table[h]!;
      if (e === 0) break;
      if (this.same(e - 1, s)) return -1;
      h = (h + 1) & this.mask;
    }
    const id = this.count++;
    if (this.used + s.length > this.arena.length) {
      const a = new Uint8Array(Math.max(this.arena.length * 2, this.used + s.length));
      a.set(this.arena.subarray(0, this.used));
      this.arena = a;
    }
    if (id + 2 > this.offs.length) {
      const o = new Int32Array(this.offs.length * 2);
      o.set(this.offs);
      this.offs = o;
    }
    if (id >= this.parents.length) {
      const p = new Int32Array(this.parents.length * 2);
      p.set(this.parents);
      this.parents = p;
    }
    this.parents[id] = parent;
    this.arena.set(s, this.used);
    this.offs[id] = this.used;
    this.used += s.length;
    this.offs[id + 1] = this.used;
    this.table[h] = id + 1;
    if (this.count * 2 > this.table.length) this.grow();
    return id;
  }

  private grow(): void {
    const size = this.table.length * 2;
    this.table = new Int32Array(size);
    this.mask = size - 1;
    for (let i = 0; i < this.count; i++) {
      let h = StateStore.hash(this.get(i)) & this.mask;
      while (this.table[h] !== 0) h = (h + 1) & this.mask;
      this.table[h] = i + 1;
    }
  }
}
