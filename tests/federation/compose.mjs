// `node compose.mjs <patron subgraph SDL file, or - for stdin>`: composes it with the Node
// subgraphs and prints {"errors": [...], "hints": [...]} as JSON; exits 1 on any error.
// CI runs it on `patron export-schema --federation` before the test suite (`make compose`).
import { readFileSync } from 'node:fs';
import { compose } from './composition.mjs';

const source = process.argv[2];
if (!source) {
  console.error('usage: node compose.mjs <schema.federation.graphql | ->');
  process.exit(2);
}
const sdl = readFileSync(source === '-' ? 0 : source, 'utf8');
const { errors, hints } = compose(sdl);
console.log(JSON.stringify({ errors, hints }, null, 2));
process.exit(errors.length > 0 ? 1 : 0);
