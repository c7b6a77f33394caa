import { ScriptEngine } from '@wirescript/engine';
import { makeItems } from './engine.bench.ts';
const items = makeItems(20000);
const engine = await ScriptEngine.create({ nodeName: 'bench' });
engine.load({ scripts: [{ index: 0, code: `var counts = {};
function onItemCaptured(data) { var key = data.request.method + ' ' + data.response.status + ' ' + data.dst.name; counts[key] = (counts[key] || 0) + 1; }` }] });
const t0 = performance.now(); let n = 0;
while (performance.now() - t0 < 3000) { engine.dispatchItems(items.slice(n % 16000, n % 16000 + 4096)); n += 4096; }
console.log(n / 3);
// breakdown
let t = performance.now(); for (let i = 0; i < 200000; i++) JSON.parse(items[i % 20000]); console.log('parse us', (performance.now() - t) / 200);
