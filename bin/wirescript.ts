#!/usr/bin/env node
// The wirescript command (Node 24 runs this TypeScript directly).
import { runCli } from '../packages/cli/src/main.ts';

// `wirescript run ... | head`: a closed pipe ends the command quietly.
for (const stream of [process.stdout, process.stderr]) {
  stream.on('error', (err: NodeJS.ErrnoException) => {
    if (err.code === 'EPIPE') process.exit(0);
    throw err;
  });
}

runCli(process.argv.slice(2), { stdout: process.stdout, stderr: process.stderr, stdin: process.stdin, env: process.env }).then(
  (code) => {
    if (code !== 'running') process.exitCode = code;
  },
  (err: Error) => {
    process.stderr.write(`wirescript: ${err.stack ?? err.message}\n`);
    process.exitCode = 1;
  },
);
