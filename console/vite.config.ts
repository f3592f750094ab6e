import react from '@vitejs/plugin-react';
import { defineConfig } from 'vite';

/** The console is served by Herald under /console (src/http/console.ts), from console/dist. */
export default defineConfig({
  root: import.meta.dirname,
  base: '/console/',
  plugins: [react()],
  build: { outDir: 'dist', emptyOutDir: true, sourcemap: true },
});
