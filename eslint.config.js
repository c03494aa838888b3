// ESLint for the browser code (ui/static: plain ES modules served as they are, no build step)
// and the Node scripts that test it (tests/ui/*.mjs). `make lint-js` runs it; CI runs it.
import js from "@eslint/js";
import globals from "globals";

const rules = {
  ...js.configs.recommended.rules,
  eqeqeq: ["error", "always", { null: "ignore" }],
  "no-var": "error",
  "prefer-const": ["error", { destructuring: "all" }],
  "no-shadow": ["error", { builtinGlobals: false }],
  "no-unused-vars": ["error", { args: "after-used", caughtErrors: "none" }],
  "no-implicit-globals": "error",
  "no-use-before-define": ["error", { functions: false, classes: false, variables: false }],
  "object-shorthand": ["error", "properties"],
  "no-throw-literal": "error",
  "no-return-assign": ["error", "except-parens"],
  curly: ["error", "multi-line"],
};

export default [
  { ignores: ["node_modules/**", ".venv/**", "build/**", "dist/**"] },
  {
    files: ["ui/static/**/*.js"],
    languageOptions: { ecmaVersion: 2023, sourceType: "module", globals: { ...globals.browser } },
    rules,
  },
  {
    files: ["tests/**/*.mjs", "eslint.config.js", "docs/**/*.mjs"],
    languageOptions: { ecmaVersion: 2023, sourceType: "module", globals: { ...globals.node } },
    rules,
  },
];
