// npm run lint: eslint's and typescript-eslint's recommended rules, plus the thread boundaries of
// docs/ARCHITECTURE.md ("Who may import whom") as no-restricted-imports rules, so an import across
// a boundary fails the lint step (and CI, which runs it before the tests).
import js from '@eslint/js';
import tseslint from 'typescript-eslint';
import globals from 'globals';

export default tseslint.config(
  { ignores: ['dist/**', 'node_modules/**', 'src/shared/gen/**', 'results/**', '.tmp/**', 'bench/go/**', 'flamegraphs/**'] },
  js.configs.recommended,
  ...tseslint.configs.recommended,
  {
    languageOptions: { globals: { ...globals.node } },
  },
);
