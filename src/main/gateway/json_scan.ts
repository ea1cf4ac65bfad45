// Finds where the first JSON value in a text ends, or the error Go's encoding/json Decoder reports for
// it. grpc-gateway reads request bodies with a json.Decoder: a body may hold several values (a
// streaming call reads them one by one; a unary call reads the first and ignores the rest), and a
// malformed one is answered with Go's scanner message ("invalid character 'x' looking for beginning
// of value", "unexpected EOF"). JSON.parse does the parsing; this only finds boundaries and errors,
// and runs only when JSON.parse of the whole text failed or the text may hold several values.

export type ScanResult =
  | { kind: 'value'; end: number }
  | { kind: 'empty' }          // only whitespace: io.EOF
  | { kind: 'incomplete' }     // cut off: io.ErrUnexpectedEOF once the body has ended
  | { kind: 'error'; message: string };

function isWs(c: number): boolean {
  return c === 0x20 || c === 0x09 || c === 0x0a || c === 0x0d;
}

function quoteChar(c: string): string {
  if (c === "'") return "'\\''";
  if (c === '"') return "'\"'";
  const j = JSON.stringify(c);
  return `'${j.slice(1, -1)}'`;
}

const err = (c: string, ctx: string): ScanResult => ({ kind: 'error', message: `invalid character ${quoteChar(c)} ${ctx}` });

/** Scans the first JSON value of s starting at `from`. */
export function scanFirstValue(s: string, from = 0): ScanResult {
  const n = s.length;
  let i = from;
  while (i < n && isWs(s.charCodeAt(i))) i++;
  if (i === n) return { kind: 'empty' };
  // Container stack: '{' or '['; per level, what is expected next.
  const stack: string[] = [];
  type Expect = 'value' | 'key' | 'keyOrEnd' | 'colon' | 'commaOrEnd' | 'valueOrEnd';
  let expect: Expect = 'value';
  for (;;) {
    while (i < n && isWs(s.charCodeAt(i))) i++;
    if (i === n) return { kind: 'incomplete' };
    const c = s[i];
    if (expect === 'value' || expect === 'valueOrEnd') {
      if (expect === 'valueOrEnd' && c === ']') { stack.pop(); i++; }
      else if (c === '{') { stack.push('{'); expect = 'keyOrEnd'; i++; continue; }
      else if (c === '[') { stack.push('['); expect = 'valueOrEnd'; i++; continue; }
      else if (c === '"') { const r = scanString(s, i); if (typeof r !== 'number') return r; i = r; }
      else if (c === '-' || (c >= '0' && c <= '9')) { const r = scanNumber(s, i); if (typeof r !== 'number') return r; i = r; }
      else if (c === 't' || c === 'f' || c === 'n') { const r = scanLiteral(s, i); if (typeof r !== 'number') return r; i = r; }
      else return err(c, 'looking for beginning of value');
    } else if (expect === 'key' || expect === 'keyOrEnd') {
      if (expect === 'keyOrEnd' && c === '}') { stack.pop(); i++; }
      else if (c === '"') { const r = scanString(s, i); if (typeof r !== 'number') return r; i = r; expect = 'colon'; continue; }
      else return err(c, 'looking for beginning of object key string');
    } else if (expect === 'colon') {
      if (c !== ':') return err(c, 'after object key');
      i++;
      expect = 'value';
      continue;
    } else { // commaOrEnd
      const top = stack[stack.length - 1];
      if (c === ',') { i++; expect = top === '{' ? 'key' : 'value'; continue; }
      if ((top === '{' && c === '}') || (top === '[' && c === ']')) { stack.pop(); i++; }
      else return err(c, top === '{' ? 'after object key:value pair' : 'after array element');
    }
    // A value (or a container) just ended.
    if (stack.length === 0) return { kind: 'value', end: i };
    expect = 'commaOrEnd';
  }
}

function scanString(s: string, start: number): number | ScanResult {
  const n = s.length;
  let i = start + 1;
  while (i < n) {
    const c = s.charCodeAt(i);
    if (c === 0x22) return i + 1;
    if (c < 0x20) return err(s[i], 'in string literal');
    if (c === 0x5c) {
      if (i + 1 >= n) return { kind: 'incomplete' };
      const e = s[i + 1];
      if (e === 'u') {
        for (let k = 2; k < 6; k++) {
          if (i + k >= n) return { kind: 'incomplete' };
          if (!/[0-9a-fA-F]/.test(s[i + k])) return err(s[i + k], 'in \\u hexadecimal character escape');
        }
        i += 6;
        continue;
      }
      if (!'"\\/bfnrt'.includes(e)) return err(e, 'in string escape code');
      i += 2;
      continue;
    }
    i++;
  }
  return { kind: 'incomplete' };
}

function scanNumber(s: string, start: number): number | ScanResult {
  const n = s.length;
  let i = start;
  const digit = (k: number): boolean => k < n && s[k] >= '0' && s[k] <= '9';
  if (s[i] === '-') {
    i++;
    if (i === n) return { kind: 'incomplete' };
    if (!digit(i)) return err(s[i], 'in numeric literal');
  }
  if (s[i] === '0') i++;
  else while (digit(i)) i++;
  if (i < n && s[i] === '.') {
    i++;
    if (i === n) return { kind: 'incomplete' };
    if (!digit(i)) return err(s[i], 'after decimal point in numeric literal');
    while (digit(i)) i++;
  }
  if (i < n && (s[i] === 'e' || s[i] === 'E')) {
    i++;
    if (i < n && (s[i] === '+' || s[i] === '-')) i++;
    if (i === n) return { kind: 'incomplete' };
    if (!digit(i)) return err(s[i], 'in exponent of numeric literal');
    while (digit(i)) i++;
  }
  // A top-level number is complete only when something follows it.
  return i === n ? { kind: 'incomplete' } : i;
}

function scanLiteral(s: string, start: number): number | ScanResult {
  const word = s[start] === 't' ? 'true' : s[start] === 'f' ? 'false' : 'null';
  for (let k = 1; k < word.length; k++) {
    if (start + k >= s.length) return { kind: 'incomplete' };
    if (s[start + k] !== word[k]) return err(s[start + k], `in literal ${word} (expecting ${quoteChar(word[k])})`);
  }
  return start + word.length;
}

/** A number token of 16 or more digits may not survive JSON.parse (doubles hold 2^53 exactly). */
const LONG_DIGITS = /\d{16}/;

/**
 * Puts quotes around number tokens (outside strings) with 16 or more digits, so that JSON.parse keeps
 * them as exact text: jsonpb reads a 64-bit field from a bare number exactly (lease IDs, member IDs
 * and cluster IDs are above 2^53), and the mapping takes quoted numbers for every numeric field.
 * Runs only when the text holds such a digit run at all.
 */
export function quoteLongNumbers(text: string): string {
  if (!LONG_DIGITS.test(text)) return text;
  let out = '';
  let last = 0;
  let inString = false;
  for (let i = 0; i < text.length; i++) {
    const c = text.charCodeAt(i);
    if (inString) {
      if (c === 0x5c) i++;
      else if (c === 0x22) inString = false;
      continue;
    }
    if (c === 0x22) { inString = true; continue; }
    if (c === 0x2d || (c >= 0x30 && c <= 0x39)) {
      let j = i + 1;
      while (j < text.length && /[0-9.eE+-]/.test(text[j])) j++;
      if (j - i >= 16 && /^-?\d+$/.test(text.slice(i, j))) {
        out += text.slice(last, i) + '"' + text.slice(i, j) + '"';
        last = j;
      }
      i = j - 1;
    }
  }
  return last === 0 ? text : out + text.slice(last);
}

/** The first JSON value of a complete body, as grpc-gateway's unary handlers read it:
 * undefined for an empty body (an empty request), or an error message. */
export function parseFirstValue(body: string): { value: unknown } | { error: string } {
  const text = quoteLongNumbers(body);
  try {
    return { value: text.length === 0 ? undefined : JSON.parse(text) };
  } catch {
    // Not exactly one value: find the first one (Go's Decoder ignores what follows) or the error.
  }
  const r = scanFirstValue(text + ' ');
  if (r.kind === 'empty') return { value: undefined };
  if (r.kind === 'incomplete') return { error: 'unexpected EOF' };
  if (r.kind === 'error') return { error: r.message };
  return { value: JSON.parse(text.slice(0, r.end)) };
}
