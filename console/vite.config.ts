import { defineConfig } from "vite";

// Served by the service at /console (src/ingest/console.py). `npm run dev` proxies the API to a local
// `ingest serve` on :8113.
export default defineConfig({
  base: "/console/",
  esbuild: { jsx: "automatic", jsxImportSource: "preact" },
  build: {
    outDir: "dist",
    assetsDir: "assets",
    emptyOutDir: true,
    // no inline module-preload polyfill: the page runs under `script-src 'self'`
    modulePreload: { polyfill: false },
    target: "es2022",
    sourcemap: false,
  },
  server: {
    proxy: { "/api": "http://127.0.0.1:8113", "/console/config.json": "http://127.0.0.1:8113" },
  },
});
