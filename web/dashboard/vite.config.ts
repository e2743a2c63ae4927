/**
 * Vite build of the dashboard. Run from the repo root:
 *   npm run build:dashboard   (vite build --config web/dashboard/vite.config.ts)
 * Output goes to web/dashboard/dist, served by the gateway at /dashboard/, so every asset URL
 * is prefixed with /dashboard/ (the reference built with base '/', and its assets were 401).
 *
 * `vite dev` proxies /dashboard/api and /analytics to a running gateway (MICROGATE_URL, default :8080).
 */
import { fileURLToPath } from 'node:url';
import react from '@vitejs/plugin-react';
import { defineConfig } from 'vite';

const root = fileURLToPath(new URL('.', import.meta.url));

// Vite only reads a default export from its config file: the one exception to named exports.
export default defineConfig({
  root,
  base: '/dashboard/',
  publicDir: false,
  plugins: [react()],
  build: {
    outDir: fileURLToPath(new URL('./dist', import.meta.url)),
    emptyOutDir: true,
    assetsDir: 'assets',
    target: 'es2022',
    sourcemap: false,
    chunkSizeWarningLimit: 600,
  },
  server: {
    proxy: {
      '/dashboard/api': { target: process.env.MICROGATE_URL ?? 'http://127.0.0.1:8080', changeOrigin: false },
      '/analytics': { target: process.env.MICROGATE_URL ?? 'http://127.0.0.1:8080', changeOrigin: false },
    },
  },
});
