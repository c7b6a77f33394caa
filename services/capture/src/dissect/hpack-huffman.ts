/**
 * HPACK Huffman decoding (RFC 7541 §5.2, Appendix B).
 *
 * The code is canonical (codes assigned in order of length, then symbol), so
 * only the 257 code lengths are kept here and the codes are derived from them.
 * Decoding runs a byte-wide state machine built once at load: the states are
 * the 256 internal nodes of the code tree, and every (state, input byte)
 * entry says where the walk ends and which symbols (at most two: the shortest
 * code is 5 bits) it completed on the way. One table lookup per input byte.
 */

/** Code length in bits of each symbol 0..255, then EOS (256). */
export const HUFFMAN_CODE_LENGTHS: readonly number[] = [
  13, 23, 28, 28, 28, 28, 28, 28, 28, 24, 30, 28, 28, 30, 28, 28, 28, 28, 28, 28, 28, 28, 30, 28, 28, 28, 28, 28, 28, 28, 28, 28,
  6, 10, 10, 12, 13, 6, 8, 11, 10, 10, 8, 11, 8, 6, 6, 6, 5, 5, 5, 6, 6, 6, 6, 6, 6, 6, 7, 8, 15, 6, 12, 10,
  13, 6, 7, 7, 7, 7, 7, 7, 7, 7, 7, 7, 7, 7, 7, 7, 7, 7, 7, 7, 7, 7, 7, 7, 8, 7, 8, 13, 19, 13, 14, 6,
  15, 5, 6, 5, 6, 5, 6, 6, 6, 5, 7, 7, 6, 6, 6, 5, 6, 7, 6, 5, 5, 6, 7, 7, 7, 7, 7, 15, 11, 14, 13, 28,
  20, 22, 20, 20, 22, 22, 22, 23, 22, 23, 23, 23, 23, 23, 24, 23, 24, 24, 22, 23, 24, 23, 23, 23, 23, 21, 22, 23, 22, 23, 23, 24,
  22, 21, 20, 22, 22, 23, 23, 21, 23, 22, 22, 24, 21, 22, 23, 23, 21, 21, 22, 21, 23, 22, 23, 23, 20, 22, 22, 22, 23, 22, 22, 23,
  26, 26, 20, 19, 22, 23, 22, 25, 26, 26, 26, 27, 27, 26, 24, 25, 19, 21, 26, 27, 27, 26, 27, 24, 21, 21, 26, 26, 28, 27, 27, 27,
  20, 24, 20, 21, 22, 21, 21, 23, 22, 22, 25, 25, 24, 24, 26, 23, 26, 27, 26, 26, 27, 27, 27, 27, 27, 28, 27, 27, 27, 27, 27, 26,
  30,
];

const EOS = 256;

/** Canonical codes from the lengths (symbols sorted by length, then value). */
function canonicalCodes(lengths: readonly number[]): number[] {
  const order = lengths.map((_, sym) => sym).sort((a, b) => lengths[a] - lengths[b] || a - b);
  const codes = new Array<number>(lengths.length).fill(0);
  let code = 0;
  let prevLen = lengths[order[0]];
  for (const sym of order) {
    code *= 2 ** (lengths[sym] - prevLen); // multiplication: codes reach 30 bits, shifts would be fine but stay clear of sign issues
    prevLen = lengths[sym];
    codes[sym] = code;
    code++;
  }
  return codes;
}

/** Code of each symbol (MSB-first, `HUFFMAN_CODE_LENGTHS[sym]` bits). */
export const HUFFMAN_CODES: readonly number[] = canonicalCodes(HUFFMAN_CODE_LENGTHS);

// Transition entry layout (Uint32): bits 0-7 next state, 8-15 first symbol,
// 16-23 second symbol, 24-25 symbols completed, bit 26 EOS seen (a decoding error).
const FAIL = 1 << 26;

const { transitions, accepting } = buildMachine();

function buildMachine(): { transitions: Uint32Array; accepting: Uint8Array } {
  // Tree as child arrays; a child >= 0 is an internal node, -(sym + 1) a leaf.
  const zero: number[] = [0];
  const one: number[] = [0];
  let nodes = 1;
  for (let sym = 0; sym <= EOS; sym++) {
    const len = HUFFMAN_CODE_LENGTHS[sym];
    const code = HUFFMAN_CODES[sym];
    let node = 0;
    for (let bit = len - 1; bit >= 0; bit--) {
      const b = Math.floor(code / 2 ** bit) % 2;
      const kids = b ? one : zero;
      if (bit === 0) {
        kids[node] = -(sym + 1);
      } else {
        if (kids[node] === 0) {
          kids[node] = nodes;
          zero[nodes] = 0;
          one[nodes] = 0;
          nodes++;
        }
        node = kids[node];
      }
    }
  }
  // The end of a string may stop inside a code only on a run of 1 bits shorter
  // than 8 (a prefix of EOS, §5.2): those states, and the root, accept.
  const accepting = new Uint8Array(nodes);
  accepting[0] = 1;
  let n = 0;
  for (let depth = 1; depth < 8; depth++) {
    n = one[n];
    accepting[n] = 1;
  }
  const transitions = new Uint32Array(nodes * 256);
  for (let state = 0; state < nodes; state++) {
    for (let byte = 0; byte < 256; byte++) {
      let node = state;
      let count = 0;
      let syms = 0;
      let fail = 0;
      for (let bit = 7; bit >= 0; bit--) {
        const child = (byte >> bit) & 1 ? one[node] : zero[node];
        if (child < 0) {
          const sym = -child - 1;
          if (sym === EOS) {
            fail = FAIL;
            break;
          }
          syms |= sym << (8 * count);
          count++;
          node = 0;
        } else {
          node = child;
        }
      }
      transitions[state * 256 + byte] = fail | (count << 24) | (syms << 8) | node;
    }
  }
  return { transitions, accepting };
}

/**
 * Decodes `src[start, end)` into `out` from offset 0; returns the number of
 * bytes written, or -1 when the input is not valid Huffman (EOS inside, or
 * padding that is not a short run of 1 bits). `out` must hold at least
 * `huffmanMaxDecodedLength(end - start)` bytes.
 */
export function huffmanDecode(src: Uint8Array, start: number, end: number, out: Uint8Array): number {
  const t = transitions;
  let state = 0;
  let w = 0;
  for (let i = start; i < end; i++) {
    const e = t[(state << 8) | src[i]];
    if (e & FAIL) return -1;
    const count = e >>> 24;
    if (count !== 0) {
      out[w++] = (e >>> 8) & 0xff;
      if (count === 2) out[w++] = (e >>> 16) & 0xff;
    }
    state = e & 0xff;
  }
  return accepting[state] ? w : -1;
}

/** Upper bound of the decoded length of `n` Huffman-coded bytes (5 bits is the shortest code). */
export function huffmanMaxDecodedLength(n: number): number {
  return Math.ceil((n * 8) / 5);
}
