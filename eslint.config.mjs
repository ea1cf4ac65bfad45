// npm run lint (CI runs it before the tests): eslint's and typescript-eslint's recommended rules,
// and the thread boundaries of docs/ARCHITECTURE.md ("Who may import whom") as no-restricted-imports
// rules, so that an import across a boundary fails the lint step.
//
// The boundaries are checked on the import specifier. Every import inside src/ is relative, and no
// folder inside src/main or src/shared is called "workers" (nor one inside src/shared or src/workers
// "main"), so a specifier that names such a segment is exactly an import of that folder.
import { defineConfig } from 'eslint/config';
import js from '@eslint/js';
import tseslint from 'typescript-eslint';
import globals from 'globals';

const seg = (name) => `(^|/)${name}(/|$)`;

/** src/shared is below both threads: it imports nothing from src/main or src/workers. */
const sharedRules = [
  {
    regex: seg('main'),
    caseSensitive: true,
    message: 'src/shared imports nothing from src/main (see docs/ARCHITECTURE.md, Who may import whom).',
  },
  {
    regex: seg('workers'),
    caseSensitive: true,
    message: 'src/shared imports nothing from src/workers (see docs/ARCHITECTURE.md, Who may import whom).',
  },
];

/** Workers never import main-thread code; what both need lives in src/shared. */
const workerRules = [
  {
    regex: seg('main'),
    caseSensitive: true,
    message: 'src/workers does not import src/main: move what both need to src/shared (docs/ARCHITECTURE.md).',
  },
];

/**
 * The main thread starts workers by file path (a string), never imports their code, and reads the
 * MVCC store only through the read-only MvccStore (src/shared/mvcc/store.ts), not the layout
 * helpers below it; the writer lives in src/workers/mvcc.
 */
const mainRules = [
  {
    regex: seg('workers'),
    caseSensitive: true,
    message: 'src/main does not import src/workers (start a worker by its file path; shared code goes to src/shared).',
  },
  {
    regex: '(^|/)shared/mvcc/(?!store$)',
    caseSensitive: true,
    message: 'src/main reads LMDB only through MvccStore (src/shared/mvcc/store.ts).',
  },
];

/** The Raft core is pure: its own files, assert, and the entry type; no node: modules, no I/O. */
const raftRules = [
  ...mainRules,
  {
    regex: '^(?!\\./[\\w.-]+$|\\.\\./\\.\\./shared/(errors|entry_type)$)',
    caseSensitive: true,
    message: 'src/main/raft is a pure library: it imports only its own files, src/shared/errors and src/shared/entry_type.',
  },
];

const boundary = (files, patterns) => ({ files, rules: { 'no-restricted-imports': ['error', { patterns }] } });

export default defineConfig(
  { ignores: ['dist/**', 'node_modules/**', 'src/shared/gen/**', 'results/**', '.tmp/**', 'bench/go/**', 'flamegraphs/**'] },
  js.configs.recommended,
  tseslint.configs.recommended,
  {
    languageOptions: { globals: { ...globals.node } },
    linterOptions: { reportUnusedDisableDirectives: 'error' },
    rules: {
      // Unused names are tsc's job (noUnusedLocals/noUnusedParameters); this keeps the `_` convention for
      // deliberately unused parameters and destructured fields in sync with it.
      '@typescript-eslint/no-unused-vars': ['error', { argsIgnorePattern: '^_', varsIgnorePattern: '^_', caughtErrors: 'none' }],
      // `cond ? a() : b()` as a statement is used on purpose in a few short loops (server.ts).
      '@typescript-eslint/no-unused-expressions': ['error', { allowTernary: true, allowShortCircuit: true }],
    },
  },
  {
    // Plain CommonJS scripts run by node directly (no build step).
    files: ['**/*.js', '**/*.cjs'],
    rules: { '@typescript-eslint/no-require-imports': 'off' },
  },
  {
    // Static imports only, so the boundary rules below see every import (require() is refused by
    // typescript-eslint's no-require-imports, apart from two commented exceptions of packages).
    files: ['src/**'],
    rules: {
      'no-restricted-syntax': [
        'error',
        { selector: 'ImportExpression', message: 'src/ uses static imports only (the boundary rules check those).' },
        {
          selector: 'TSImportType[argument.literal.value=/^\\./]',
          message: 'Import the type with a static import type (the boundary rules check those).',
        },
      ],
    },
  },
  boundary(['src/shared/**'], sharedRules),
  boundary(['src/workers/**'], workerRules),
  boundary(['src/main/**'], mainRules),
  boundary(['src/main/raft/**'], raftRules),
  {
    files: ['src/main/raft/**'],
    rules: {
      // Deterministic: time is ticks and randomness a seeded generator passed in (docs/ENGINEERING).
      'no-restricted-properties': [
        'error',
        { object: 'Date', property: 'now', message: 'Raft is deterministic: time is ticks.' },
        { object: 'Math', property: 'random', message: 'Raft is deterministic: use the seeded generator passed in.' },
      ],
      'no-restricted-globals': ['error', 'setTimeout', 'setInterval', 'setImmediate', 'queueMicrotask', 'process', 'performance'],
    },
  },
);
