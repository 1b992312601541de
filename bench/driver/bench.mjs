// bench.mjs drives one MCP server over stdio with the official TypeScript
// SDK client (pinned in package.json) and prints its figures as one JSON
// object on stdout. bench/run.sh runs it against `wasmhost serve` and the
// native go-sdk baseline (bench/native) in the same run and prints ratios.
//
//   node bench.mjs --label NAME [--seq N] [--conc C] [--per P] [--elicit N]
//                  [--starts N] [--tools T] -- COMMAND ARG...
//
// Figures (all client-side, over stdio):
//   start_init_ms    spawn to `initialize` answered (median of --starts)
//   start_list_ms    spawn to a tools/list with all T tools (following
//                    notifications/tools/list_changed; median of --starts)
//   greet_p50_ms, greet_p99_ms   greet, N sequential calls
//   greet_conc_cps   greet, C concurrent callers doing P calls each: calls/s
//   confirm_p50_ms, confirm_p99_ms   confirm_delete as a plain call, the
//                    client answering its one elicitation at once
import { Client } from '@modelcontextprotocol/sdk/client/index.js';
import { StdioClientTransport } from '@modelcontextprotocol/sdk/client/stdio.js';
import { ElicitRequestSchema, ToolListChangedNotificationSchema } from '@modelcontextprotocol/sdk/types.js';

const argv = process.argv.slice(2);
const sep = argv.indexOf('--');
if (sep < 1 || sep === argv.length - 1) {
    console.error('usage: node bench.mjs --label NAME [options] -- COMMAND ARG...');
    process.exit(2);
}
const opt = {};
for (let i = 0; i < sep; i += 2) opt[argv[i].replace(/^--/, '')] = argv[i + 1];
const [command, ...args] = argv.slice(sep + 1);
const num = (k, d) => (opt[k] === undefined ? d : Number(opt[k]));
const SEQ = num('seq', 500), CONC = num('conc', 16), PER = num('per', 50);
const ELICIT = num('elicit', 100), STARTS = num('starts', 5), TOOLS = num('tools', 0);
const TIMEOUT = 60_000; // per request: a hung server fails the run
const START_TIMEOUT = 600_000; // initialize, on a machine loading many plugins

const now = () => performance.now();
const pct = (xs, p) => {
    const s = [...xs].sort((a, b) => a - b);
    return s[Math.min(s.length - 1, Math.floor((p / 100) * s.length))];
};
const median = xs => pct(xs, 50);

function newClient() {
    const client = new Client(
        { name: 'wasmhost-bench', version: '0.0.0' },
        { capabilities: { elicitation: { form: {} } } }
    );
    client.setRequestHandler(ElicitRequestSchema, async () => ({ action: 'accept', content: { confirm: true } }));
    // The server's stderr is passed on: run.sh starts it at --log-level warn,
    // so only trouble shows.
    const transport = new StdioClientTransport({ command, args, stderr: 'inherit' });
    return { client, transport };
}

// startOnce times spawn → initialize answered and spawn → a tools/list
// holding every tool (TOOLS of them; 0 means whatever the first list says).
async function startOnce() {
    const { client, transport } = newClient();
    const t0 = now();
    const init = await connectAll(client, transport, t0);
    const list = now() - t0;
    await client.close();
    return { init, list };
}

// connectAll connects and returns once tools/list holds TOOLS tools
// (following notifications/tools/list_changed); it returns the time from
// t0 to initialize answered.
async function connectAll(client, transport, t0) {
    let changed = () => {}, closed = () => {};
    client.setNotificationHandler(ToolListChangedNotificationSchema, async () => changed());
    client.onclose = () => closed(new Error('the server exited while its tools were loading'));
    await client.connect(transport, { timeout: START_TIMEOUT });
    const init = now() - t0;
    for (;;) {
        const wait = new Promise((resolve, reject) => { changed = resolve; closed = reject; });
        const { tools } = await client.listTools(undefined, { timeout: START_TIMEOUT });
        if (tools.length >= TOOLS) break;
        let timer;
        await Promise.race([wait, new Promise((_, rej) => {
            timer = setTimeout(() => rej(new Error(
                `tools/list has ${tools.length} of ${TOOLS} tools and no list_changed came`)), START_TIMEOUT);
        })]).finally(() => clearTimeout(timer));
    }
    client.onclose = undefined;
    return init;
}

async function call(client, name, a) {
    const t = now();
    const res = await client.callTool({ name, arguments: a }, undefined, { timeout: TIMEOUT });
    if (res.isError) throw new Error(`${name}: ${JSON.stringify(res.content)}`);
    return now() - t;
}

const out = { label: opt.label ?? command };
if (STARTS > 0) {
    const inits = [], lists = [];
    for (let i = 0; i < STARTS; i++) {
        const { init, list } = await startOnce();
        inits.push(init); lists.push(list);
    }
    out.start_init_ms = median(inits);
    out.start_list_ms = median(lists);
}

const { client, transport } = newClient();
await connectAll(client, transport, now());
// Warm up: first calls pay for lazy set-up on both sides.
for (let i = 0; i < 20; i++) await call(client, 'greet', { name: 'warm' });
await call(client, 'confirm_delete', { filename: 'warm.txt' });

if (SEQ > 0) {
    const ts = [];
    for (let i = 0; i < SEQ; i++) ts.push(await call(client, 'greet', { name: `n${i}` }));
    out.greet_p50_ms = pct(ts, 50);
    out.greet_p99_ms = pct(ts, 99);
}
if (CONC > 0 && PER > 0) {
    const t0 = now();
    await Promise.all(Array.from({ length: CONC }, async (_, c) => {
        for (let i = 0; i < PER; i++) await call(client, 'greet', { name: `c${c}.${i}` });
    }));
    out.greet_conc_cps = (CONC * PER) / ((now() - t0) / 1000);
}
if (ELICIT > 0) {
    const ts = [];
    for (let i = 0; i < ELICIT; i++) ts.push(await call(client, 'confirm_delete', { filename: `f${i}.txt` }));
    out.confirm_p50_ms = pct(ts, 50);
    out.confirm_p99_ms = pct(ts, 99);
}
out.server_pid = transport.pid;
await client.close();
console.log(JSON.stringify(out));
process.exit(0);
