// End-to-end test: the official TypeScript MCP SDK client (pinned in
// package.json) against `wasmhost serve` over stdio, using the 2025-11-25
// experimental tasks API (SEP-1686). See README.md for how to run it and
// docs/research/ts-sdk-tasks.md for the wire protocol it exercises.
//
// Every wait is bounded and event-driven: the tests wait for stream
// messages, elicitation requests or promises, never for a fixed sleep.

import { after, describe, test } from 'node:test';
import assert from 'node:assert/strict';

import { Client } from '@modelcontextprotocol/sdk/client/index.js';
import { StdioClientTransport } from '@modelcontextprotocol/sdk/client/stdio.js';
import {
    CallToolResultSchema,
    ElicitRequestSchema,
    ErrorCode,
    McpError,
    RELATED_TASK_META_KEY,
    TaskStatusNotificationSchema
} from '@modelcontextprotocol/sdk/types.js';

const BIN = process.env.WASMHOST_BIN;
const PLUGINS = process.env.WASMHOST_PLUGINS;
const configured = Boolean(BIN && PLUGINS);

// How long a cancelled task may take to be reported cancelled by
// callToolStream (it polls tasks/get every pollInterval ms).
const PROMPT_MS = 5_000;
// Backstop for each test; each test bounds its own waits more tightly.
const TEST_TIMEOUT_MS = 30_000;
const each = { timeout: TEST_TIMEOUT_MS };
// Per-request timeout (the SDK's default is 60 s), so a hung server fails
// the test instead of outliving it.
const REQUEST_TIMEOUT_MS = 20_000;

const TASK_TOOLS = ['slow_compute', 'confirm_delete', 'multi_input'];

// ------------------------------------------------------------------ helpers

const openClients = new Set();
after(async () => {
    await Promise.allSettled([...openClients].map(c => c.close()));
});

/**
 * Starts `wasmhost serve` and connects a client to it.
 *
 * With `elicit`, the client declares the form-elicitation capability and
 * answers elicitation/create with it. Without, it declares no capability.
 * `seen` collects what a test may want to check afterwards: client-side
 * protocol errors (bad notifications, unknown response ids…), task status
 * notifications, and requests the client has no handler for.
 */
async function connect(t, { elicit } = {}) {
    const client = new Client(
        { name: 'wasmhost-e2e', version: '0.0.0' },
        elicit ? { capabilities: { elicitation: { form: {} } } } : {}
    );
    const seen = { errors: [], statuses: [], unexpectedRequests: [] };
    client.onerror = err => seen.errors.push(err);
    // Parsing is done by the SDK: a malformed notification lands in onerror.
    client.setNotificationHandler(TaskStatusNotificationSchema, n => {
        seen.statuses.push(n.params);
    });
    if (elicit) {
        client.setRequestHandler(ElicitRequestSchema, elicit);
    }
    client.fallbackRequestHandler = async request => {
        seen.unexpectedRequests.push(request.method);
        throw new McpError(ErrorCode.MethodNotFound, `e2e client has no handler for ${request.method}`);
    };

    const transport = new StdioClientTransport({
        command: BIN,
        args: ['serve', '--plugins', PLUGINS],
        env: { ...process.env },
        stderr: 'inherit'
    });
    await client.connect(transport, { timeout: REQUEST_TIMEOUT_MS });
    openClients.add(client);
    t.after(async () => {
        openClients.delete(client);
        await client.close();
    });
    return { client, seen };
}

/** Asserts that the client saw no protocol-level trouble. */
function assertClean(seen) {
    assert.deepEqual(
        seen.errors.map(e => e.message),
        [],
        'the client reported protocol errors'
    );
    assert.deepEqual(seen.unexpectedRequests, [], 'the server sent requests the client never declared');
}

async function listAllTools(client) {
    const tools = [];
    let cursor;
    do {
        const page = await client.listTools(cursor ? { cursor } : undefined);
        tools.push(...page.tools);
        cursor = page.nextCursor;
    } while (cursor);
    return tools;
}

function textOf(result) {
    return result.content
        .filter(c => c.type === 'text')
        .map(c => c.text)
        .join('\n');
}

/** Rejects with a readable message if `promise` does not settle in `ms`. */
function within(promise, ms, what) {
    let timer;
    const timeout = new Promise((_, reject) => {
        timer = setTimeout(() => reject(new Error(`timed out after ${ms} ms waiting for ${what}`)), ms);
    });
    return Promise.race([promise, timeout]).finally(() => clearTimeout(timer));
}

/**
 * Runs a tool through callToolStream and returns every message it yielded
 * (taskCreated, taskStatus…, then exactly one result or error).
 * `onMessage` runs before the next message is pulled.
 */
async function streamTool(client, name, args, { options = { task: { ttl: 60_000 } }, onMessage } = {}) {
    const messages = [];
    const stream = client.experimental.tasks.callToolStream({ name, arguments: args }, CallToolResultSchema, {
        timeout: REQUEST_TIMEOUT_MS,
        ...options
    });
    for await (const message of stream) {
        messages.push(message);
        await onMessage?.(message);
    }
    return messages;
}

/** The final result of a stream, failing with the stream's error if any. */
function finalResult(messages) {
    const last = messages.at(-1);
    assert.ok(last, 'callToolStream yielded nothing');
    assert.equal(last.type, 'result', `stream ended with ${last.type}: ${last.error?.message ?? ''}`);
    return last.result;
}

function createdTask(messages) {
    const created = messages.find(m => m.type === 'taskCreated');
    assert.ok(created, `no taskCreated message; got ${messages.map(m => m.type).join(', ')}`);
    return created.task;
}

/** An elicitation handler that answers every request the same way and records it. */
function recordingElicit(answer) {
    const requests = [];
    const handler = async (request, extra) => {
        requests.push({ params: request.params, extraTaskId: extra.taskId });
        return answer;
    };
    return { requests, handler };
}

/**
 * Fills a form-mode requestedSchema with values that identify answer `n`:
 * strings become `answer-<n>`, numbers 1000+n, booleans true. Returns the
 * content and the markers a tool echoing the answers should show.
 */
function formAnswer(requestedSchema, n) {
    const content = {};
    const markers = [];
    for (const [key, prop] of Object.entries(requestedSchema?.properties ?? {})) {
        if (Array.isArray(prop.enum) && prop.enum.length > 0) {
            // The last choice, so that a default answer cannot pass for it.
            content[key] = prop.enum[prop.enum.length - 1];
            markers.push(String(content[key]));
        } else if (Array.isArray(prop.oneOf) && prop.oneOf.length > 0) {
            content[key] = prop.oneOf[0].const;
        } else if (prop.type === 'string') {
            content[key] = `answer-${n}`;
            markers.push(content[key]);
        } else if (prop.type === 'number' || prop.type === 'integer') {
            content[key] = 1000 + n;
            markers.push(String(content[key]));
        } else if (prop.type === 'boolean') {
            content[key] = true;
        }
    }
    return { content, markers };
}

// ------------------------------------------------------------------ tests

if (!configured) {
    test('wasmhost e2e environment', () => {
        assert.fail('set WASMHOST_BIN (the wasmhost binary) and WASMHOST_PLUGINS (the fixture plugin directory); see README.md');
    });
}

describe('wasmhost with the TypeScript SDK tasks client', { skip: !configured }, () => {
    test('advertises tasks and tools carry execution.taskSupport', each, async t => {
        const { client, seen } = await connect(t);

        const caps = client.getServerCapabilities();
        assert.ok(caps?.tasks?.requests?.tools?.call, 'capabilities.tasks.requests.tools.call must be set, or callToolStream never asks for a task');
        assert.ok(caps.tasks.cancel, 'capabilities.tasks.cancel');
        assert.ok(caps.tasks.list, 'capabilities.tasks.list');

        const tools = new Map((await listAllTools(client)).map(tool => [tool.name, tool]));
        for (const name of ['greet', ...TASK_TOOLS]) {
            const tool = tools.get(name);
            assert.ok(tool, `tools/list has no ${name}; it has ${[...tools.keys()].join(', ')}`);
            assert.ok(
                ['forbidden', 'optional', 'required'].includes(tool.execution?.taskSupport),
                `${name}.execution.taskSupport = ${JSON.stringify(tool.execution)}`
            );
        }
        for (const name of TASK_TOOLS) {
            assert.notEqual(tools.get(name).execution.taskSupport, 'forbidden', `${name} must be callable as a task`);
        }
        assert.notEqual(tools.get('greet').execution.taskSupport, 'required', 'greet must be callable without a task');
        assertClean(seen);
    });

    test('greet answers a plain tools/call', each, async t => {
        const { client, seen } = await connect(t);
        const result = await client.callTool({ name: 'greet', arguments: { name: 'Ada' } });
        assert.ok(!result.isError, textOf(result));
        assert.equal(textOf(result), 'Hello, Ada!');
        assertClean(seen);
    });

    test('an unknown tool is a protocol error', each, async t => {
        const { client, seen } = await connect(t);
        await assert.rejects(client.callTool({ name: 'no_such_tool', arguments: {} }), err => {
            assert.ok(err instanceof McpError, `expected McpError, got ${err}`);
            assert.match(err.message, /no_such_tool/);
            return true;
        });
        assertClean(seen);
    });

    test('bad arguments are a tool error naming the field', each, async t => {
        const { client, seen } = await connect(t);
        const result = await client.callTool({ name: 'greet', arguments: { name: 5 } });
        assert.equal(result.isError, true, `expected isError, got ${JSON.stringify(result)}`);
        assert.match(textOf(result), /\bname\b/);
        assertClean(seen);
    });

    test('confirm_delete as a task: accepted elicitation reaches the tool', each, async t => {
        // The answer is held until the stream has seen input_required, so
        // this test always takes the spec's path: tasks/get reports
        // input_required, the client calls tasks/result, which must block
        // while the elicitation is answered and then return the tool result.
        let sawInputRequired;
        const inputRequiredSeen = new Promise(resolve => (sawInputRequired = resolve));
        const requests = [];
        let waitError;
        const handler = async (request, extra) => {
            requests.push({ params: request.params, extraTaskId: extra.taskId });
            try {
                await within(inputRequiredSeen, 10_000, 'tasks/get to report input_required while an elicitation is open');
            } catch (err) {
                waitError ??= err;
                throw err;
            }
            return { action: 'accept', content: { confirm: true } };
        };
        const { client, seen } = await connect(t, { elicit: handler });

        // After tools/list the client knows confirm_delete supports tasks and
        // the server supports task-augmented tools/call, so callToolStream
        // adds `task: {}` by itself.
        await listAllTools(client);
        const messages = await streamTool(client, 'confirm_delete', { filename: 'a.txt' }, {
            options: {},
            onMessage: message => {
                if (message.type === 'taskStatus' && message.task.status === 'input_required') sawInputRequired();
            }
        });
        if (waitError) throw waitError;

        assert.equal(messages[0].type, 'taskCreated', 'callToolStream did not create a task');
        const task = createdTask(messages);
        assert.equal(task.status, 'working');
        assert.deepEqual(
            messages.map(m => m.task?.status ?? m.type).slice(-2),
            ['input_required', 'result'],
            'the result must come from the tasks/result call made on input_required'
        );
        const result = finalResult(messages);
        // Accepted; the server grants the plugin no /files directory, so
        // the tool says it deleted nothing (cmd/wasmhost TestGrantedDeletion
        // covers a granted deletion).
        assert.match(textOf(result), /^Not deleted a\.txt: /);
        assert.deepEqual(result._meta?.[RELATED_TASK_META_KEY], { taskId: task.taskId }, 'tasks/result must carry the related-task _meta');

        assert.equal(requests.length, 1, 'exactly one elicitation');
        const [{ params, extraTaskId }] = requests;
        assert.deepEqual(params._meta?.[RELATED_TASK_META_KEY], { taskId: task.taskId }, 'elicitation/create must carry the related-task _meta');
        assert.equal(extraTaskId, task.taskId);
        assert.ok(params.requestedSchema?.properties?.confirm, `requestedSchema: ${JSON.stringify(params.requestedSchema)}`);
        assertClean(seen);
    });

    test('confirm_delete as a task: declined elicitation keeps the file', each, async t => {
        const elicit = recordingElicit({ action: 'decline' });
        const { client, seen } = await connect(t, { elicit: elicit.handler });

        const messages = await streamTool(client, 'confirm_delete', { filename: 'a.txt' });
        const task = createdTask(messages);
        assert.equal(textOf(finalResult(messages)), 'Kept a.txt');
        assert.equal(elicit.requests.length, 1, 'exactly one elicitation');
        assert.deepEqual(elicit.requests[0].params._meta?.[RELATED_TASK_META_KEY], { taskId: task.taskId });
        assertClean(seen);
    });

    test('multi_input asks two questions at once and uses both answers', each, async t => {
        const requests = [];
        let bothArrived;
        const arrived = new Promise(resolve => (bothArrived = resolve));
        let barrierError;
        const handler = async request => {
            const n = requests.push(request.params);
            if (n === 2) bothArrived();
            try {
                // Hold every answer until both questions are open: this only
                // succeeds if the server sends them concurrently.
                await within(arrived, 10_000, 'the second elicitation while the first is unanswered (multi_input must ask both at once)');
            } catch (err) {
                barrierError ??= err;
                throw err;
            }
            const { content } = formAnswer(request.params.requestedSchema, n);
            return { action: 'accept', content };
        };
        const { client, seen } = await connect(t, { elicit: handler });

        const messages = await streamTool(client, 'multi_input', {});
        if (barrierError) throw barrierError;
        const task = createdTask(messages);
        const text = textOf(finalResult(messages));

        assert.equal(requests.length, 2, 'exactly two elicitations');
        for (const [i, params] of requests.entries()) {
            assert.deepEqual(params._meta?.[RELATED_TASK_META_KEY], { taskId: task.taskId }, `elicitation ${i + 1} related-task _meta`);
            const { markers } = formAnswer(params.requestedSchema, i + 1);
            assert.ok(markers.length > 0, `elicitation ${i + 1} asks for no string or number field: ${JSON.stringify(params.requestedSchema)}`);
            for (const marker of markers) {
                assert.ok(text.includes(marker), `result ${JSON.stringify(text)} lacks answer ${marker}`);
            }
        }
        assertClean(seen);
    });

    test('slow_compute as a task is cancelled promptly with tasks/cancel', each, async t => {
        const { client, seen } = await connect(t);

        let taskId;
        let cancelled;
        let cancelledAt;
        const messages = await within(
            streamTool(client, 'slow_compute', { seconds: 60 }, {
                onMessage: async message => {
                    if (message.type === 'taskCreated') taskId = message.task.taskId;
                    // Cancel once the server has reported the task running.
                    if (message.type === 'taskStatus' && message.task.status === 'working' && !cancelled) {
                        cancelled = await client.experimental.tasks.cancelTask(taskId);
                        cancelledAt = Date.now();
                    }
                }
            }),
            TEST_TIMEOUT_MS - 5_000,
            'slow_compute to end after tasks/cancel'
        );
        assert.ok(cancelled, `never saw the task working; got ${messages.map(m => m.task?.status ?? m.type).join(', ')}`);
        const elapsed = Date.now() - cancelledAt;
        assert.ok(elapsed < PROMPT_MS, `stream ended ${elapsed} ms after tasks/cancel`);

        assert.equal(cancelled.taskId, taskId);
        assert.equal(cancelled.status, 'cancelled', 'tasks/cancel must answer with the cancelled task');
        const statuses = messages.filter(m => m.type === 'taskStatus').map(m => m.task.status);
        assert.equal(statuses.at(-1), 'cancelled');
        const last = messages.at(-1);
        assert.equal(last.type, 'error');
        assert.match(last.error.message, /cancelled/);

        // Terminal is final, a second cancel is invalid, and the task is listed.
        assert.equal((await client.experimental.tasks.getTask(taskId)).status, 'cancelled');
        await assert.rejects(client.experimental.tasks.cancelTask(taskId), { code: ErrorCode.InvalidParams });
        const { tasks } = await client.experimental.tasks.listTasks();
        assert.ok(
            tasks.some(x => x.taskId === taskId && x.status === 'cancelled'),
            `tasks/list: ${JSON.stringify(tasks)}`
        );
        await assert.rejects(client.experimental.tasks.getTask('no-such-task'), { code: ErrorCode.InvalidParams });
        assertClean(seen);
    });

    test('without the elicitation capability confirm_delete still finishes', each, async t => {
        const { client, seen } = await connect(t);
        const messages = await within(
            streamTool(client, 'confirm_delete', { filename: 'a.txt' }),
            10_000,
            'confirm_delete to finish for a client that cannot answer elicitations'
        );
        createdTask(messages);
        assert.equal(textOf(finalResult(messages)), 'Kept a.txt');
        // assertClean also checks that no elicitation/create was sent.
        assertClean(seen);
    });
});
