import assert from 'node:assert/strict';
import { existsSync, readdirSync, readFileSync } from 'node:fs';
import { dirname, isAbsolute, join, relative, resolve, sep } from 'node:path';
import { describe, it } from 'node:test';
import { fileURLToPath } from 'node:url';

/**
 * The repository stands alone: its markdown links only to files inside it that exist, and every rule id
 * and docs/spec.md section that code, tests and documents cite is defined in docs/spec.md.
 */
const REPO = resolve(fileURLToPath(new URL('../../', import.meta.url)));
const SKIP_DIRS = new Set(['node_modules', '.git', 'dist', 'coverage']);
const SPEC = join(REPO, 'docs', 'spec.md');

function walk(dir: string, keep: (file: string) => boolean, out: string[] = []): string[] {
  for (const entry of readdirSync(dir, { withFileTypes: true })) {
    if (SKIP_DIRS.has(entry.name)) continue;
    const path = join(dir, entry.name);
    if (entry.isDirectory()) walk(path, keep, out);
    else if (entry.isFile() && keep(path)) out.push(path);
  }
  return out;
}

const rel = (path: string): string => relative(REPO, path).split(sep).join('/');

/** Relative link targets of a markdown text: inline `](target)` and reference definitions; code is skipped. */
export function linkTargets(markdown: string): string[] {
  const prose = markdown
    .replace(/^ {0,3}(```|~~~)[^\n]*\n[\s\S]*?^ {0,3}\1[^\n]*$/gm, '')
    .replace(/`[^`\n]*`/g, '');
  const targets = [
    ...[...prose.matchAll(/\]\(\s*<?([^)\s>]+)>?(?:\s+(?:"[^"]*"|'[^']*'))?\s*\)/g)].map((m) => m[1]!),
    ...[...prose.matchAll(/^ {0,3}\[[^\]\n]+\]:\s*<?(\S+?)>?(?:\s|$)/gm)].map((m) => m[1]!),
  ];
  // Web links (http:, https:, mailto: …) and anchors within the page are not files.
  return targets.filter((t) => !/^[a-z][a-z0-9+.-]*:/i.test(t) && !t.startsWith('#'));
}

/** Problems with the links of one markdown file: a target outside the repository, or a missing file. */
export function linkProblems(file: string, markdown: string): string[] {
  const problems: string[] = [];
  for (const target of linkTargets(markdown)) {
    const path = decodeURIComponent(target.replace(/[?#].*$/, ''));
    if (path === '') continue;
    const abs = path.startsWith('/') ? join(REPO, path) : resolve(dirname(file), path);
    const inside = relative(REPO, abs);
    if (inside.startsWith('..') || isAbsolute(inside)) problems.push(`${rel(file)} links outside the repository: ${target}`);
    else if (!existsSync(abs)) problems.push(`${rel(file)} links to a file that does not exist: ${target}`);
  }
  return problems;
}

const RULE_ID_RE = /\b(?:S|M|O|FR)-[0-9]+\b/g;
const spec = readFileSync(SPEC, 'utf8');
const definitions = [...spec.matchAll(/\*\*((?:S|M|O|FR)-[0-9]+)\*\*/g)].map((m) => m[1]!);
const sections = new Set([...spec.matchAll(/^#{2,3} ([0-9]+(?:\.[0-9]+)?)\.? /gm)].map((m) => m[1]!));

const markdownFiles = walk(REPO, (f) => f.endsWith('.md'));
const citingFiles = [
  ...['src', 'test', 'bench', 'scripts', 'docs'].flatMap((d) => (existsSync(join(REPO, d)) ? walk(join(REPO, d), (f) => /\.(ts|js|md|json)$/.test(f)) : [])),
  join(REPO, 'README.md'),
];

describe('the repository stands alone (docs)', () => {
  it('finds the markdown files to check', () => {
    for (const f of ['README.md', 'docs/spec.md', 'docs/errors.md']) assert.ok(markdownFiles.map(rel).includes(f), `${f} is checked`);
  });

  it('no markdown file links outside the repository or to a file that does not exist', () => {
    const problems = markdownFiles.flatMap((f) => linkProblems(f, readFileSync(f, 'utf8')));
    assert.deepEqual(problems, []);
  });

  it('the link check refuses a link that leaves the repository, and a missing file', () => {
    const readme = join(REPO, 'README.md');
    assert.equal(linkProblems(readme, 'The contract is [`../shared/SPEC.md`](../shared/SPEC.md).').length, 1);
    assert.equal(linkProblems(readme, '[abs](/../outside.md) [gone](docs/no-such-file.md)').length, 2);
    assert.deepEqual(linkProblems(readme, '[ok](docs/spec.md#3-running-it) [web](https://example.com/x) [here](#layout) `[code](../x)`'), []);
    assert.deepEqual(linkProblems(readme, '```\n[block](../x)\n```\n'), []);
  });

  it('docs/spec.md defines each rule id once', () => {
    const seen = new Set<string>();
    for (const id of definitions) {
      assert.ok(!seen.has(id), `${id} is defined twice in docs/spec.md`);
      seen.add(id);
    }
    assert.ok(seen.size > 0);
  });

  it('every rule id cited in the repository is defined in docs/spec.md', () => {
    const defined = new Set(definitions);
    const undefinedIds: string[] = [];
    for (const file of citingFiles) {
      for (const [id] of readFileSync(file, 'utf8').matchAll(RULE_ID_RE)) {
        if (!defined.has(id)) undefinedIds.push(`${rel(file)}: ${id}`);
      }
    }
    assert.deepEqual([...new Set(undefinedIds)], []);
  });

  it('every section of docs/spec.md cited as "spec.md §n" exists', () => {
    const missing: string[] = [];
    for (const file of citingFiles) {
      for (const line of readFileSync(file, 'utf8').split('\n')) {
        if (!line.includes('spec.md')) continue;
        for (const [, n] of line.matchAll(/§([0-9]+(?:\.[0-9]+)?)/g)) if (!sections.has(n!)) missing.push(`${rel(file)}: §${n}`);
      }
    }
    assert.deepEqual(missing, []);
  });
});
