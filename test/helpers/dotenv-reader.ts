/**
 * A reader of .env files by the `dotenv` npm package's documented parsing
 * rules (its README, "Parsing", v17): the package itself is not a dependency.
 *
 * - line breaks are normalized (CR LF and a lone CR become LF);
 * - `KEY=value`, an optional `export ` before the key, keys of [A-Za-z0-9_.-];
 * - a value wrapped in ', " or ` runs to its closing quote, line breaks included,
 *   and keeps its inner whitespace; nothing inside is expanded, except that
 *   double quotes turn the two characters \n and \r into a line feed and a
 *   carriage return;
 * - an unquoted value ends at `#` or the end of the line and is trimmed.
 *
 * Where dotenv's two parsers (the default regular expression and the opt-in
 * `fast` scanner) differ, the stricter reading is taken: inside quotes a
 * backslash pairs with a following backslash or quote character (kept as
 * written), so a value ending in an odd run of backslashes does not close.
 */
export function readDotenv(text: string): Record<string, string> {
  const src = text.replace(/\r\n?/g, '\n');
  const out: Record<string, string> = {};
  let i = 0;
  while (i < src.length) {
    const line = /^[ \t\n\uFEFF]*(?:export[ \t]+)?([\w.-]+)[ \t]*=[ \t]*/.exec(src.slice(i));
    if (!line) {
      // A comment, or a line that is no assignment: skipped.
      const nl = src.indexOf('\n', i);
      i = nl < 0 ? src.length : nl + 1;
      continue;
    }
    i += line[0].length;
    const quote = src[i];
    let value: string | undefined;
    if (quote === "'" || quote === '"' || quote === '`') {
      let j = i + 1;
      while (j < src.length && src[j] !== quote) j += src[j] === '\\' && (src[j + 1] === quote || src[j + 1] === '\\') ? 2 : 1;
      if (j < src.length) {
        value = src.slice(i + 1, j);
        if (quote === '"') value = value.replace(/\\n/g, '\n').replace(/\\r/g, '\r');
        i = j + 1;
        const rest = /^[ \t]*(?:#[^\n]*)?/.exec(src.slice(i))![0];
        i += rest.length;
      }
    }
    if (value === undefined) {
      const end = src.slice(i).search(/[#\n]/);
      const stop = end < 0 ? src.length : i + end;
      value = src.slice(i, stop).trim();
      i = stop;
    }
    out[line[1]!] = value;
    const nl = src.indexOf('\n', i);
    i = nl < 0 ? src.length : nl + 1;
  }
  return out;
}
