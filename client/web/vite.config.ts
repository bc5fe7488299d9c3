/// <reference types="vitest/config" />
import { defineConfig } from 'vite';

// The app is served by Carnet under /app/ (server/web_app.py); tests run in Node.
export default defineConfig({
  base: '/app/',
  build: {
    outDir: 'dist',
    emptyOutDir: true,
    target: 'es2022',
    sourcemap: false,
    chunkSizeWarningLimit: 1024, // libsodium (sumo) alone is ~600 kB
  },
  test: {
    include: ['test/**/*.test.ts'],
    environment: 'node',
    testTimeout: 30_000,
  },
});
