// suspended.mjs: resident memory per suspended guest. Starts a server,
// reads its VmRSS, makes N confirm_delete calls whose elicitations the
// client never answers (each guest stays suspended, waiting), reads VmRSS
// again and prints the difference per call as JSON.
//
//   node suspended.mjs [--n N] -- COMMAND ARG...
import { readFileSync } from 'node:fs';
import { Client } from '@modelcontextprotocol/sdk/client/index.js';
import { StdioClientTransport } from '@modelcontextprotocol/sdk/client/stdio.js';
import { ElicitRequestSchema } from '@modelcontextprotocol/sdk/types.js';

const argv = process.argv.slice(2);
const sep = argv.indexOf('--');
const n = Number(argv[argv.indexOf('--n') + 1] || 100);
const [command, ...args] = argv.slice(sep + 1);

const rssKB = pid => Number(/VmRSS:\s+(\d+)/.exec(readFileSync(`/proc/${pid}/status`, 'utf8'))[1]);
const client = new Client({ name: 'wasmhost-bench', version: '0.0.0' }, { capabilities: { elicitation: { form: {} } } });
let asked = 0, allAsked;
const everyoneAsked = new Promise(r => { allAsked = r; });
client.setRequestHandler(ElicitRequestSchema, () => {
    if (++asked === n) allAsked();
    return new Promise(() => {}); // never answered: the guest stays suspended
});
const transport = new StdioClientTransport({ command, args, stderr: 'ignore' });
await client.connect(transport, { timeout: 60_000 });
// One answered call first, so that lazily built state is not counted.
await client.callTool({ name: 'greet', arguments: { name: 'warm' } });
const before = rssKB(transport.pid);
for (let i = 0; i < n; i++) {
    client.callTool({ name: 'confirm_delete', arguments: { filename: `f${i}` } }, undefined, { timeout: 600_000 }).catch(() => {});
}
await everyoneAsked;
const after = rssKB(transport.pid);
console.log(JSON.stringify({ n, rss_before_mb: before / 1024, rss_after_mb: after / 1024, per_task_mb: (after - before) / 1024 / n }));
process.exit(0);
