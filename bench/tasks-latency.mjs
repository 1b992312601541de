#!/usr/bin/env node
// bench/tasks-latency.mjs — how long a 2025-11-25 tasks client waits for a
// task's result after answering its question: the official TypeScript SDK
// client (pinned in e2e/ts) runs client.experimental.tasks.callToolStream
// on confirm_delete N times, answers the elicitation at once, and measures
// answer → result (from the elicitation handler returning to the stream
// yielding the result). Prints p50, p99 and max in ms, and one summary line
// for bench/run.sh:
//   tasks-latency <label> n=<N> p50=<ms> p99=<ms> max=<ms>
//
// Usage (from the repository root, after `cd e2e/ts && npm ci` and
// `go build -o /tmp/wasmhost ./cmd/wasmhost`):
//   node bench/tasks-latency.mjs --bin /tmp/wasmhost --plugins plugins \
//     [--transport stdio|http] [--redis URL [--redis-prefix P]] [--workers N] [--rounds 30]
//   node bench/tasks-latency.mjs --reference [--rounds 30]
// --redis runs the front end with --workers 0 and N (default 2) separate
// `wasmhost worker` processes. --reference measures the TypeScript SDK's own
// task server example (simpleTaskInteractive, HTTP) with the same client.
// A benchmark, not a test: it never fails on a figure.

import { spawn } from 'node:child_process';
import { once } from 'node:events';
import { createServer } from 'node:net';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { parseArgs } from 'node:util';

const here = dirname(fileURLToPath(import.meta.url));
const sdkDir = join(here, '..', 'e2e', 'ts', 'node_modules', '@modelcontextprotocol', 'sdk', 'dist', 'esm');
const sdk = p => import(pathToFileURL(join(sdkDir, p)).href);

const { values: opt } = parseArgs({
    options: {
        bin: { type: 'string', default: process.env.WASMHOST_BIN ?? '' },
        plugins: { type: 'string', default: process.env.WASMHOST_PLUGINS ?? 'plugins' },
        transport: { type: 'string', default: 'stdio' },
        redis: { type: 'string', default: '' },
        'redis-prefix': { type: 'string', default: `bench-latency-${process.pid}` },
        workers: { type: 'string', default: '2' },
        rounds: { type: 'string', default: '30' },
        reference: { type: 'boolean', default: false },
        label: { type: 'string', default: '' }
    }
});

const { Client } = await sdk('client/index.js');
const { StdioClientTransport } = await sdk('client/stdio.js');
const { StreamableHTTPClientTransport } = await sdk('client/streamableHttp.js');
const { CallToolResultSchema, ElicitRequestSchema } = await sdk('types.js');

const children = [];
function start(cmd, args, env = {}) {
    const child = spawn(cmd, args, { env: { ...process.env, ...env }, stdio: ['ignore', 'ignore', 'pipe'] });
    let tail = '';
    child.stderr.on('data', d => {
        tail = (tail + d).slice(-4000);
    });
    child.on('exit', code => {
        if (code && !stopping) process.stderr.write(`${cmd} ${args[0]} exited with ${code}:\n${tail}\n`);
    });
    children.push(child);
    return child;
}
let stopping = false;
async function stopAll() {
    stopping = true;
    await Promise.all(
        children.map(async c => {
            if (c.exitCode !== null || c.signalCode !== null) return;
            c.kill('SIGTERM');
            await once(c, 'exit');
        })
    );
}

async function freePort() {
    const srv = createServer();
    srv.listen(0, '127.0.0.1');
    await once(srv, 'listening');
    const { port } = srv.address();
    srv.close();
    await once(srv, 'close');
    return port;
}

// connectHTTP retries until the server listens (it may still be loading
// plugins); a benchmark may wait like this, a test may not.
async function connectHTTP(client, url) {
    const deadline = Date.now() + 60_000;
    for (;;) {
        try {
            await client.connect(new StreamableHTTPClientTransport(new URL(url)));
            return;
        } catch (err) {
            if (Date.now() > deadline) throw new Error(`could not reach ${url}: ${err.message}`);
            await new Promise(r => setTimeout(r, 100));
        }
    }
}

function newClient(answered) {
    const client = new Client({ name: 'tasks-latency', version: '0.0.0' }, { capabilities: { elicitation: { form: {} } } });
    client.setRequestHandler(ElicitRequestSchema, async () => {
        answered.at = performance.now();
        return { action: 'accept', content: { confirm: true } };
    });
    return client;
}

async function setup(answered) {
    const client = newClient(answered);
    if (opt.reference) {
        const port = await freePort();
        start(process.execPath, [join(sdkDir, 'examples', 'server', 'simpleTaskInteractive.js')], { PORT: String(port) });
        await connectHTTP(client, `http://127.0.0.1:${port}/mcp`);
        return { client, label: 'ts-reference http' };
    }
    if (!opt.bin) throw new Error('--bin (or WASMHOST_BIN) must name a wasmhost binary');
    const plugins = resolve(opt.plugins);
    const store = opt.redis ? ['--redis', opt.redis, '--redis-prefix', opt['redis-prefix'], '--workers', '0'] : [];
    if (opt.redis) {
        for (let i = 0; i < Number(opt.workers); i++) {
            start(opt.bin, ['worker', '--plugins', plugins, '--redis', opt.redis, '--redis-prefix', opt['redis-prefix'], '--log-level', 'warn']);
        }
    }
    const label = `wasmhost ${opt.transport} ${opt.redis ? `redis+${opt.workers}workers` : 'embedded'}`;
    if (opt.transport === 'http') {
        const port = await freePort();
        start(opt.bin, ['serve', '--plugins', plugins, '--http', `127.0.0.1:${port}`, '--log-level', 'warn', ...store]);
        await connectHTTP(client, `http://127.0.0.1:${port}/mcp`);
        return { client, label };
    }
    await client.connect(
        new StdioClientTransport({
            command: opt.bin,
            args: ['serve', '--plugins', plugins, '--log-level', 'warn', ...store],
            env: { ...process.env },
            stderr: 'inherit'
        }),
        { timeout: 60_000 }
    );
    return { client, label };
}

function percentile(sorted, p) {
    return sorted[Math.min(sorted.length - 1, Math.ceil((p / 100) * sorted.length) - 1)];
}

const answered = { at: 0 };
let code = 0;
try {
    const { client, label } = await setup(answered);
    await client.listTools(); // the client sends the task field only for tools it has listed
    const rounds = Number(opt.rounds);
    const samples = [];
    for (let i = 0; i < rounds; i++) {
        answered.at = 0;
        const stream = client.experimental.tasks.callToolStream(
            { name: 'confirm_delete', arguments: { filename: `r${i}.txt` } },
            CallToolResultSchema,
            { task: { ttl: 60_000 }, timeout: 60_000 }
        );
        let result;
        for await (const m of stream) {
            if (m.type === 'result') result = m;
            if (m.type === 'error') throw m.error;
        }
        const end = performance.now();
        if (!result || !answered.at) throw new Error(`round ${i}: no result or no question`);
        samples.push(end - answered.at);
    }
    samples.sort((a, b) => a - b);
    const f = x => x.toFixed(1);
    console.log(`answer → result over ${rounds} rounds (${opt.label || label}): p50 ${f(percentile(samples, 50))} ms, p99 ${f(percentile(samples, 99))} ms, max ${f(samples.at(-1))} ms`);
    console.log(`tasks-latency ${(opt.label || label).replaceAll(' ', '_')} n=${rounds} p50=${f(percentile(samples, 50))} p99=${f(percentile(samples, 99))} max=${f(samples.at(-1))}`);
    await client.close();
} catch (err) {
    console.error(`tasks-latency: ${err.stack ?? err}`);
    code = 1;
} finally {
    await stopAll();
}
process.exit(code);
