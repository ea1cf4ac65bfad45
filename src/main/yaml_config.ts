// The YAML that etcd's --config-file takes (etcd.conf.yml), read without a YAML library: etcd's file is
// flat, so this reads the subset it uses and refuses anything else with the line number, rather than
// guessing. What it reads:
//
//   # comments, blank lines, a leading "---"
//   key: scalar                 plain, 'single' or "double" quoted; empty, ~ and null are null
//   key: [a, b, 'c']            a flow list of scalars
//   key:                        followed by more-indented lines, either
//     - item                      a block list of scalars, or
//     sub-key: scalar             a map of scalars (client-transport-security, peer-transport-security)
//
// Scalars stay strings (the caller knows each field's type); a list keeps its items.

export type YamlScalar = string | null;
export type YamlValue = YamlScalar | YamlScalar[] | Map<string, YamlScalar | YamlScalar[]>;

export class YamlError extends Error {}

interface Line {
  no: number;
  indent: number;
  text: string;
}

/** Parses etcd's config file; keys in file order. Throws YamlError naming the line it cannot read. */
export function parseEtcdYaml(src: string): Map<string, YamlValue> {
  const lines = meaningfulLines(src);
  const out = new Map<string, YamlValue>();
  let i = 0;
  while (i < lines.length) {
    const l = lines[i];
    if (l.indent !== 0) throw new YamlError(`line ${l.no}: unexpected indentation`);
    const [key, rest] = keyValue(l);
    if (out.has(key)) throw new YamlError(`line ${l.no}: key "${key}" already set`);
    i++;
    if (rest !== '') {
      out.set(key, value(rest, l.no));
      continue;
    }
    const block: Line[] = [];
    while (i < lines.length && lines[i].indent > 0) block.push(lines[i++]);
    out.set(key, block.length === 0 ? null : nested(block));
  }
  return out;
}

function meaningfulLines(src: string): Line[] {
  const out: Line[] = [];
  src.split(/\r?\n/).forEach((raw, idx) => {
    const no = idx + 1;
    if (/^\t| \t/.test(raw)) throw new YamlError(`line ${no}: tabs are not allowed in indentation`);
    const text = stripComment(raw).trimEnd();
    if (text.trim() === '' || (out.length === 0 && text === '---')) return;
    if (text === '...' || text.startsWith('---')) throw new YamlError(`line ${no}: only one YAML document is read`);
    out.push({ no, indent: text.length - text.trimStart().length, text: text.trim() });
  });
  return out;
}

/** Removes a "# comment" that is outside quotes and starts a line or follows a space. */
function stripComment(s: string): string {
  let quote = '';
  for (let i = 0; i < s.length; i++) {
    const c = s[i];
    if (quote !== '') {
      if (c === quote) quote = '';
      else if (c === '\\' && quote === '"') i++;
    } else if (c === '"' || c === "'") {
      quote = c;
    } else if (c === '#' && (i === 0 || s[i - 1] === ' ' || s[i - 1] === '\t')) {
      return s.slice(0, i);
    }
  }
  return s;
}

function keyValue(l: Line): [string, string] {
  const m = /^([A-Za-z0-9_.-]+|"[^"]*"|'[^']*'):(?:\s+(.*))?$/.exec(l.text);
  if (!m) throw new YamlError(`line ${l.no}: expected "key: value"`);
  const key = m[1].startsWith('"') || m[1].startsWith("'") ? m[1].slice(1, -1) : m[1];
  return [key, (m[2] ?? '').trim()];
}

function nested(block: Line[]): YamlScalar[] | Map<string, YamlScalar | YamlScalar[]> {
  const indent = block[0].indent;
  for (const l of block) {
    if (l.indent !== indent) throw new YamlError(`line ${l.no}: nesting deeper than one level is not read`);
  }
  if (block[0].text.startsWith('- ') || block[0].text === '-') {
    return block.map((l) => {
      if (!(l.text.startsWith('- ') || l.text === '-')) throw new YamlError(`line ${l.no}: expected "- item"`);
      return scalar(l.text.slice(1).trim(), l.no);
    });
  }
  const map = new Map<string, YamlScalar | YamlScalar[]>();
  for (const l of block) {
    const [k, rest] = keyValue(l);
    const v = value(rest, l.no);
    if (v instanceof Map) throw new YamlError(`line ${l.no}: nesting deeper than one level is not read`);
    map.set(k, v);
  }
  return map;
}

function value(s: string, no: number): YamlScalar | YamlScalar[] {
  if (s.startsWith('[')) {
    if (!s.endsWith(']')) throw new YamlError(`line ${no}: unterminated flow list`);
    const inner = s.slice(1, -1).trim();
    return inner === '' ? [] : splitFlow(inner, no).map((x) => scalar(x.trim(), no));
  }
  if (s.startsWith('{') || s.startsWith('&') || s.startsWith('*') || s.startsWith('|') || s.startsWith('>') || s.startsWith('!')) {
    throw new YamlError(`line ${no}: YAML feature not read here (${s[0]})`);
  }
  return scalar(s, no);
}

function splitFlow(s: string, no: number): string[] {
  const parts: string[] = [];
  let quote = '';
  let start = 0;
  for (let i = 0; i < s.length; i++) {
    const c = s[i];
    if (quote !== '') {
      if (c === quote) quote = '';
    } else if (c === '"' || c === "'") {
      quote = c;
    } else if (c === ',') {
      parts.push(s.slice(start, i));
      start = i + 1;
    } else if (c === '[' || c === '{') {
      throw new YamlError(`line ${no}: nested flow collections are not read`);
    }
  }
  parts.push(s.slice(start));
  return parts;
}

function scalar(s: string, no: number): YamlScalar {
  if (s === '' || s === '~' || s === 'null' || s === 'Null' || s === 'NULL') return null;
  if (s.startsWith("'")) {
    if (s.length < 2 || !s.endsWith("'")) throw new YamlError(`line ${no}: unterminated quoted string`);
    return s.slice(1, -1).replace(/''/g, "'");
  }
  if (s.startsWith('"')) {
    if (s.length < 2 || !s.endsWith('"')) throw new YamlError(`line ${no}: unterminated quoted string`);
    try {
      return JSON.parse(s) as string;
    } catch {
      throw new YamlError(`line ${no}: bad escape in "${s}"`);
    }
  }
  return s;
}
