// Lint runs as part of `npm test`. Type-aware rules catch floating promises, the classic
// source of unhandled rejections (and so crashes) in an Express gateway.
import { existsSync } from 'node:fs';
import js from '@eslint/js';
import tseslint from 'typescript-eslint';

// The bench files that import the benchmark-only packages (bench/package.json) are linted only once
// `npm run bench` (or `npm run bench:check`) has installed those packages: without their types the
// type-aware rules would judge `any`s. Their type check is bench/tsconfig.json's, run by the same commands.
const BENCH_ONLY_IMPORTERS = ['bench/run.ts', 'bench/lib/load.ts', 'bench/hosts/jackson.ts'];
const benchInstalled = existsSync(new URL('./bench/node_modules/.idpb-bench-lock.sha256', import.meta.url));

export default tseslint.config(
  { ignores: ['dist/', 'node_modules/', 'bench/node_modules/', 'coverage/', 'eslint.config.js', ...(benchInstalled ? [] : BENCH_ONLY_IMPORTERS)] },
  js.configs.recommended,
  ...tseslint.configs.recommendedTypeChecked,
  {
    languageOptions: {
      parserOptions: { projectService: true, tsconfigRootDir: import.meta.dirname },
    },
    rules: {
      '@typescript-eslint/no-floating-promises': 'error',
      '@typescript-eslint/no-misused-promises': ['error', { checksVoidReturn: { arguments: false } }],
      '@typescript-eslint/no-unused-vars': ['error', { argsIgnorePattern: '^_', varsIgnorePattern: '^_' }],
      '@typescript-eslint/consistent-type-imports': 'error',
      'no-console': 'error',
      // Refusing control characters in hostile input is deliberate here.
      'no-control-regex': 'off',
    },
  },
  {
    files: ['test/**/*.ts', 'bench/**/*.ts', 'scripts/**/*.ts'],
    rules: {
      'no-console': 'off',
      '@typescript-eslint/no-unsafe-assignment': 'off',
      '@typescript-eslint/no-unsafe-member-access': 'off',
      '@typescript-eslint/no-unsafe-argument': 'off',
      '@typescript-eslint/no-unsafe-call': 'off',
      '@typescript-eslint/no-non-null-assertion': 'off',
      '@typescript-eslint/no-floating-promises': [
        'error',
        { allowForKnownSafeCalls: [{ from: 'package', package: 'node:test', name: ['describe', 'it', 'test', 'suite'] }] },
      ],
    },
  },
);
