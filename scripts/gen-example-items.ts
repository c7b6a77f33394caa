/** Regenerates examples/items/http-sample.jsonl (deterministic). */
import { writeFileSync } from 'node:fs';
import { makeHttpItemsJsonl } from '@wirescript/testing';

writeFileSync(new URL('../examples/items/http-sample.jsonl', import.meta.url), makeHttpItemsJsonl(500, 7));
