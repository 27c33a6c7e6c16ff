import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { copyFileSync, readdirSync, readFileSync } from 'node:fs';
import { join, relative } from 'node:path';
import { describe, it } from 'node:test';
import { ROOT, tempDir } from '../helpers.js';

interface Pkg {
  dependencies: Record<string, string>;
  devDependencies: Record<string, string>;
  man?: string[];
  allowScripts?: Record<string, boolean>;
  scripts: Record<string, string>;
}
interface Lock {
  packages: Record<
    string,
    { version?: string; hasInstallScript?: boolean; optionalDependencies?: Record<string, string> }
  >;
}

const pkg = JSON.parse(readFileSync(join(ROOT, 'package.json'), 'utf8')) as Pkg;
const lock = JSON.parse(readFileSync(join(ROOT, 'package-lock.json'), 'utf8')) as Lock;

function walk(dir: string): string[] {
  return readdirSync(dir, { withFileTypes: true }).flatMap((e) =>
    e.isDirectory() ? walk(join(dir, e.name)) : [join(dir, e.name)],
  );
}

// Issue 8 items 33, 34, 35: the package installs with `npm ci`, carries its man pages, and
// depends on nothing it does not use.
describe('package', () => {
  it('npm ci accepts the lock file (every platform-specific optional dependency is locked)', () => {
    for (const [path, p] of Object.entries(lock.packages))
      for (const dep of Object.keys(p.optionalDependencies ?? {}))
        assert.ok(lock.packages[`node_modules/${dep}`], `${path} needs ${dep}, which the lock file misses`);
    const t = tempDir();
    try {
      copyFileSync(join(ROOT, 'package.json'), join(t.dir, 'package.json'));
      copyFileSync(join(ROOT, 'package-lock.json'), join(t.dir, 'package-lock.json'));
      // --dry-run --offline: checks package.json against the lock without downloading anything.
      execFileSync('npm', ['ci', '--dry-run', '--offline', '--ignore-scripts', '--no-audit', '--no-fund'], {
        cwd: t.dir,
        stdio: 'pipe',
      });
    } catch (e) {
      assert.fail(`npm ci refuses the lock file: ${String((e as { stderr?: Buffer }).stderr ?? e)}`);
    } finally {
      t.cleanup();
    }
    assert.match(readFileSync(join(ROOT, '.ci', 'run'), 'utf8'), /^npm ci\b/m);
  });

  it('every runtime dependency is imported by src/, and install scripts are approved', () => {
    const code = walk(join(ROOT, 'src'))
      .filter((f) => f.endsWith('.ts'))
      .map((f) => readFileSync(f, 'utf8'))
      .join('\n');
    for (const dep of Object.keys(pkg.dependencies))
      assert.ok(
        code.includes(`from '${dep}'`) ||
          code.includes(`from '${dep}/`) ||
          code.includes(`import('${dep}`) ||
          code.includes(`(import.meta.url)('${dep}`), // createRequire(import.meta.url)('dep'): loaded on first use
        `dependency ${dep} is not used by src/`,
      );
    for (const [path, p] of Object.entries(lock.packages))
      if (p.hasInstallScript) {
        const name = path.replace(/^.*node_modules\//, '');
        assert.ok(
          pkg.allowScripts?.[name] === true || pkg.allowScripts?.[`${name}@${p.version}`] === true,
          `${name} has an install script that allowScripts does not approve`,
        );
      }
  });

  it('ships and declares every man page, so npm install -g installs them', () => {
    const pages = readdirSync(join(ROOT, 'man'))
      .filter((f) => /\.\d$/.test(f))
      .map((f) => `./man/${f}`)
      .sort();
    assert.ok(pages.length >= 8);
    assert.deepEqual([...(pkg.man ?? [])].sort(), pages);
    const packed = JSON.parse(
      execFileSync('npm', ['pack', '--dry-run', '--json', '--ignore-scripts'], {
        cwd: ROOT,
        encoding: 'utf8',
      }),
    ) as { files: { path: string }[] }[];
    const files = new Set(packed[0].files.map((f) => f.path));
    for (const p of pages) assert.ok(files.has(relative('.', p)), `${p} is not in the package`);
    assert.ok(files.has('bin/kappa') && files.has('dist/src/cli.js'));
    assert.ok(pkg.scripts.prepack?.includes('tsc'), 'npm pack builds dist/ first');
  });

  // Issue 8 item 24, issue 9: exactly-once and durable state exist only through checkpoints, so a
  // sentence claiming them must say so (or deny them).
  it('README, package.json, man pages and --help claim exactly-once and durable state only with checkpoints', () => {
    const texts: [string, string][] = [
      ['README.md', readFileSync(join(ROOT, 'README.md'), 'utf8')],
      ['package.json', readFileSync(join(ROOT, 'package.json'), 'utf8')],
      ...readdirSync(join(ROOT, 'man')).map((f): [string, string] => [
        `man/${f}`,
        readFileSync(join(ROOT, 'man', f), 'utf8'),
      ]),
      ...['ingest', 'transform', 'window', 'join', 'sink'].map((c): [string, string] => [
        `kappa ${c} --help`,
        execFileSync(join(ROOT, 'bin', 'kappa'), [c, '--help'], { encoding: 'utf8' }),
      ]),
    ];
    for (const [where, text] of texts) {
      // Line-wrapped text: look at sentences, not lines.
      const sentences = text
        .replace(/\\-/g, '-')
        .replace(/\s+/g, ' ')
        .split(/(?<=[.:;])\s/);
      for (const s of sentences)
        if (/exactly[- ]once|durable (keyed )?state|survives? (a )?(crash|restart)/i.test(s))
          assert.match(s, /\b(not|no|nothing|never|yet)\b|checkpoint|epoch/i, `${where} claims: ${s}`);
    }
  });
});
