// End-to-end test of delivery order: every progress and log notification
// of a call reaches the official TypeScript SDK client before the call's
// result, over stdio and over Streamable HTTP (where they travel on the
// request's own SSE stream), many calls in a row. See README.md for how to
// run it; docs/protocol.md ("Delivery") for the mechanism.

import { after, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { once } from 'node:events';
import { createServer } from 'node:net';

import { Client } from '@modelcontextprotocol/sdk/client/index.js';
import { StdioClientTransport } from '@modelcontextprotocol/sdk/client/stdio.js';
import { StreamableHTTPClientTransport } from '@modelcontextprotocol/sdk/client/streamableHttp.js';
import { LoggingMessageNotificationSchema, TaskStatusNotificationSchema, CallToolResultSchema } from '@modelcontextprotocol/sdk/types.js';

const BIN = process.env.WASMHOST_BIN;
const PLUGINS = process.env.WASMHOST_PLUGINS;
const configured = Boolean(BIN && PLUGINS);
const CALLS = Number(process.env.ORDER_CALLS ?? 50);
const COMMITS = ['feat: a', 'fix: b', 'docs: c', 'perf: d', 'chore: e'];
const each = { timeout: 180_000 };
const REQUEST_TIMEOUT_MS = 30_000;

const cleanups = [];
after(async () => {
    for (const c of cleanups.reverse()) await c();
});

async function freePort() {
    const srv = createServer();
    srv.listen(0, '127.0.0.1');
    await once(srv, 'listening');
    const { port } = srv.address();
    srv.close();
    await once(srv, 'close');
    return port;
}

/** Starts `wasmhost serve --http` and connects once it listens (bounded). */
async function connectHTTP(client) {
    const port = await freePort();
    const child = spawn(BIN, ['serve', '--plugins', PLUGINS, '--http', `127.0.0.1:${port}`], {
        env: { ...process.env },
        stdio: ['ignore', 'ignore', 'inherit']
    });
    cleanups.push(async () => {
        if (child.exitCode === null && child.signalCode === null) {
            child.kill('SIGTERM');
            await once(child, 'exit');
        }
    });
    const exited = once(child, 'exit').then(([code]) => {
        throw new Error(`wasmhost serve --http exited with ${code} before it served`);
    });
    const url = new URL(`http://127.0.0.1:${port}/mcp`);
    const deadline = Date.now() + 60_000;
    for (;;) {
        try {
            await Promise.race([client.connect(new StreamableHTTPClientTransport(url), { timeout: REQUEST_TIMEOUT_MS }), exited]);
            return;
        } catch (err) {
            // Only "not listening yet" is retried, until the deadline.
            if (!/ECONNREFUSED|fetch failed/.test(String(err?.cause?.code ?? err?.message)) || Date.now() > deadline) throw err;
            await new Promise(r => setTimeout(r, 50));
        }
    }
}

async function connect(transport) {
    const client = new Client({ name: 'wasmhost-e2e-order', version: '0.0.0' });
    const seen = { errors: [], logs: [], statuses: [], statusWaiters: [] };
    client.onerror = err => seen.errors.push(err);
    client.setNotificationHandler(LoggingMessageNotificationSchema, n => seen.logs.push(n.params));
    client.setNotificationHandler(TaskStatusNotificationSchema, n => {
        seen.statuses.push(n.params);
        seen.statusWaiters = seen.statusWaiters.filter(w => !w(n.params));
    });
    if (transport === 'http') {
        await connectHTTP(client);
    } else {
        await client.connect(
            new StdioClientTransport({ command: BIN, args: ['serve', '--plugins', PLUGINS], env: { ...process.env }, stderr: 'inherit' }),
            { timeout: REQUEST_TIMEOUT_MS }
        );
    }
    cleanups.push(() => client.close());
    seen.errors.length = 0; // refused connections while the server started
    await client.setLoggingLevel('debug');
    return { client, seen };
}

describe('every notification of a call arrives before its result', { skip: !configured && 'set WASMHOST_BIN and WASMHOST_PLUGINS' }, () => {
    for (const transport of ['stdio', 'http']) {
        test(`${CALLS} calls over ${transport}`, each, async () => {
            const { client, seen } = await connect(transport);
            for (let i = 0; i < CALLS; i++) {
                const version = `v${i}.0.0`;
                const progress = [];
                const logsBefore = seen.logs.length;
                const result = await client.callTool(
                    { name: 'release_notes', arguments: { version, commits: COMMITS, audience: 'developers' } },
                    CallToolResultSchema,
                    { onprogress: p => progress.push(p), timeout: REQUEST_TIMEOUT_MS }
                );
                // What the client has seen at the moment the result arrived.
                assert.ok(!result.isError, `call ${i}: ${JSON.stringify(result.content)}`);
                assert.ok(
                    progress.some(p => p.progress === COMMITS.length && p.total === COMMITS.length),
                    `call ${i} over ${transport}: the last progress report came after the result (saw ${JSON.stringify(progress)})`
                );
                assert.ok(
                    seen.logs.slice(logsBefore).some(l => String(l.data).includes(version)),
                    `call ${i} over ${transport}: its log line came after the result`
                );
            }
            assert.deepEqual(seen.errors.map(e => e.message), [], 'the client reported protocol errors');
        });
    }

    test('task status notifications reach an HTTP client', each, async () => {
        const { client, seen } = await connect('http');
        await client.listTools(); // the client adds the task field only for tools it listed
        const stream = client.experimental.tasks.callToolStream(
            { name: 'slow_compute', arguments: { seconds: 0 } },
            CallToolResultSchema,
            { task: { ttl: 60_000 }, timeout: REQUEST_TIMEOUT_MS }
        );
        let taskId;
        for await (const m of stream) {
            if (m.type === 'taskCreated') taskId = m.task.taskId;
            if (m.type === 'error') throw m.error;
        }
        assert.ok(taskId, 'no task was created');
        // The notification travels on the session's GET stream, the result
        // on the POST's: wait for it (bounded) rather than assume an order
        // between two connections.
        const completed = s => s.taskId === taskId && s.status === 'completed';
        if (!seen.statuses.some(completed)) {
            await new Promise((resolve, reject) => {
                const timer = setTimeout(
                    () => reject(new Error(`no completed status notification for ${taskId}: ${JSON.stringify(seen.statuses)}`)),
                    10_000
                );
                seen.statusWaiters.push(st => {
                    if (!completed(st)) return false;
                    clearTimeout(timer);
                    resolve();
                    return true;
                });
            });
        }
        assert.deepEqual(seen.errors.map(e => e.message), [], 'the client reported protocol errors');
    });
});
