#!/usr/bin/env node
// Runs the TypeScript entry point through tsx, so the bin needs no build step
// (npm run build compiles it to dist/bin). CI images can instead copy the
// self-contained bundle scripts/ci/dist/nexus-ci.mjs (npm run build:ci).
import { register } from 'tsx/esm/api';

register();
await import('../ci/nexus-ci.ts');
