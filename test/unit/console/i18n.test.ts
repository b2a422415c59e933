// The admin console's strings: the three catalogs have the same keys and no placeholder is lost in
// translation, and no component hard-codes a user-visible string (JSX text or a text attribute).
import assert from 'node:assert/strict';
import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import ts from 'typescript';

const CONSOLE = join(import.meta.dirname, '../../../src/console');
const catalog = (lang: string): Record<string, string> => JSON.parse(readFileSync(join(CONSOLE, 'i18n', `${lang}.json`), 'utf8')) as Record<string, string>;

function tsxFiles(dir: string): string[] {
  return readdirSync(dir, { withFileTypes: true }).flatMap((e) =>
    e.isDirectory() ? tsxFiles(join(dir, e.name)) : e.name.endsWith('.tsx') ? [join(dir, e.name)] : [],
  );
}

const TEXT_ATTRIBUTES = new Set(['aria-label', 'aria-description', 'placeholder', 'title', 'alt', 'label']);

/** JSX text with a letter in it, and text attributes given a literal with a letter, found by the TypeScript parser. */
export function hardCodedStrings(source: string): string[] {
  const file = ts.createSourceFile('x.tsx', source, ts.ScriptTarget.Latest, true, ts.ScriptKind.TSX);
  const found: string[] = [];
  const visit = (node: ts.Node): void => {
    if (ts.isJsxText(node) && /\p{L}/u.test(node.text)) found.push(node.text.trim());
    if (ts.isJsxAttribute(node) && TEXT_ATTRIBUTES.has(node.name.getText(file)) && node.initializer) {
      const init = node.initializer;
      const literal = ts.isStringLiteral(init) ? init : ts.isJsxExpression(init) && init.expression && ts.isStringLiteralLike(init.expression) ? init.expression : null;
      if (literal && /\p{L}/u.test(literal.text)) found.push(`${node.name.getText(file)}="${literal.text}"`);
    }
    ts.forEachChild(node, visit);
  };
  visit(file);
  return found;
}

describe('console i18n', () => {
  const en = catalog('en');
  for (const lang of ['ko', 'ja']) {
    it(`${lang}.json has exactly the keys of en.json, with the same {placeholders}`, () => {
      const other = catalog(lang);
      assert.deepEqual(Object.keys(other).sort(), Object.keys(en).sort());
      for (const [key, text] of Object.entries(en)) {
        const params = (s: string) => [...s.matchAll(/\{(\w+)\}/g)].map((m) => m[1]).sort();
        assert.deepEqual(params(other[key]!), params(text), `${lang} ${key}`);
      }
    });
    it(`${lang}.json is translated, not an English copy`, () => {
      const other = catalog(lang);
      const copies = Object.keys(en).filter((k) => other[k] === en[k] && /[a-z]{3,} [a-z]{3,}/.test(en[k]!));
      assert.deepEqual(copies, []);
    });
  }

  it('the scanner finds hard-coded JSX text and text attributes', () => {
    assert.deepEqual(hardCodedStrings('<p>Hello world</p>'), ['Hello world']);
    assert.deepEqual(hardCodedStrings('<button aria-label="Close">{t("x")}</button>'), ['aria-label="Close"']);
    assert.deepEqual(hardCodedStrings('<p>{t("a")}</p>{list.map((x) => <li key={x}>{x}</li>)}'), []);
  });

  it('no .tsx component hard-codes a user-visible string', () => {
    const files = tsxFiles(CONSOLE);
    assert.ok(files.length >= 5);
    const offenders = files.flatMap((f) => hardCodedStrings(readFileSync(f, 'utf8')).map((s) => `${f.slice(CONSOLE.length + 1)}: ${s}`));
    assert.deepEqual(offenders, []);
  });
});
