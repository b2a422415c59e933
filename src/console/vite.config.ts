// The admin console's build (docs/plan: built by `npm run build` into dist/console, served at /console/).
// The gateway serves it under a strict CSP (script-src 'self'; style-src 'self'): nothing may be inlined.
import react from '@vitejs/plugin-react';
import { defineConfig } from 'vite';

const here = (relative: string): string => decodeURIComponent(new URL(relative, import.meta.url).pathname);

export default defineConfig({
  root: here('.'),
  base: '/console/',
  plugins: [react()],
  publicDir: false,
  build: {
    outDir: here('../../dist/console'),
    emptyOutDir: true,
    // Every asset is a file: a data: URI would be an inline resource the CSP may refuse (fonts).
    assetsInlineLimit: 0,
    // The module preload polyfill is bundled, never an inline script; all current browsers support it anyway.
    modulePreload: { polyfill: false },
    sourcemap: false,
  },
});
