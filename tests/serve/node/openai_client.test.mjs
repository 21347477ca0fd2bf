// The official `openai` npm client against a real `specula serve` on
// 127.0.0.1 (a free port the server picks): completions with and without
// streaming (include_usage), chat completions (ChatML via --chat-template),
// models, errors and authentication.
// Run by run-openai-client-test.sh (node's test runner).
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import path from 'node:path';
import OpenAI from 'openai';

const cli = process.env.SPECULA_CLI_PATH;
const source = process.env.SPECULA_SOURCE_DIR;
const apiKey = 'sk-specula-test';
let server;
let baseURL;
let log = '';

before(async () => {
  assert.ok(cli && source, 'SPECULA_CLI_PATH and SPECULA_SOURCE_DIR must be set');
  const models = path.join(source, 'models');
  server = spawn(cli, [
    'serve', '--host', '127.0.0.1', '--port', '0', '--parallel', '2', '-t', '2',
    '-m', path.join(models, 'specula-py-target-q8_0.gguf'),
    '-d', path.join(models, 'specula-py-draft-distilled-f16.gguf'),
    '--api-key', apiKey, '--ctx', '256', '--chat-template', 'chatml',
  ], { stdio: ['ignore', 'pipe', 'pipe'] });
  const port = await new Promise((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`no ready line in 60 s:\n${log}`)), 60000);
    const read = (data) => {
      log += data;
      const m = log.match(/ready on http:\/\/127\.0\.0\.1:(\d+)/);
      if (m) {
        clearTimeout(timer);
        resolve(Number(m[1]));
      }
    };
    server.stdout.on('data', read);
    server.stderr.on('data', read);
    server.on('exit', (code) => reject(new Error(`specula serve exited ${code}:\n${log}`)));
  });
  baseURL = `http://127.0.0.1:${port}/v1`;
});

after(async () => {
  if (!server || server.exitCode !== null) return;
  const exited = new Promise((resolve) => server.on('exit', resolve));
  server.kill('SIGTERM');
  let timer;
  const timeout = new Promise((resolve) => { timer = setTimeout(() => resolve('timeout'), 30000); });
  const code = await Promise.race([exited, timeout]);
  clearTimeout(timer);
  if (code === 'timeout') server.kill('SIGKILL');
  assert.equal(code, 0, `specula serve exit code after SIGTERM:\n${log}`);
});

const client = () => new OpenAI({ apiKey, baseURL, maxRetries: 0, timeout: 120000 });

test('models lists the served model', async () => {
  const models = await client().models.list();
  const ids = models.data.map((m) => m.id);
  assert.deepEqual(ids, ['specula-py-target-q8_0']);
  assert.equal(models.data[0].object, 'model');
});

test('a completion has text, usage, finish_reason and the speculative object', async () => {
  const completion = await client().completions.create({
    model: 'specula-py-target-q8_0', prompt: 'def main():\n', max_tokens: 24, temperature: 0,
  });
  assert.equal(completion.object, 'text_completion');
  assert.match(completion.id, /^cmpl-/);
  assert.equal(completion.choices.length, 1);
  assert.equal(typeof completion.choices[0].text, 'string');
  assert.ok(completion.choices[0].text.length > 0);
  assert.ok(['length', 'stop'].includes(completion.choices[0].finish_reason));
  assert.ok(completion.usage.prompt_tokens > 0);
  assert.ok(completion.usage.completion_tokens > 0 && completion.usage.completion_tokens <= 24);
  assert.equal(completion.usage.total_tokens,
    completion.usage.prompt_tokens + completion.usage.completion_tokens);
  assert.equal(typeof completion.speculative.acceptance, 'number');
  assert.ok(Array.isArray(completion.speculative.g_histogram));
});

test('streaming gives the same greedy text, then usage with include_usage', async () => {
  const request = { model: 'm', prompt: 'import os\nimport ', max_tokens: 20, temperature: 0 };
  const whole = await client().completions.create(request);
  const stream = await client().completions.create({
    ...request, stream: true, stream_options: { include_usage: true },
  });
  let text = '';
  let finish = null;
  let usage = null;
  let chunks = 0;
  for await (const chunk of stream) {
    chunks += 1;
    if (chunk.choices.length > 0) {
      text += chunk.choices[0].text;
      if (chunk.choices[0].finish_reason) finish = chunk.choices[0].finish_reason;
    }
    if (chunk.usage) usage = chunk.usage;
  }
  assert.ok(chunks >= 3, `only ${chunks} chunks`);
  assert.equal(text, whole.choices[0].text);
  assert.equal(finish, whole.choices[0].finish_reason);
  assert.deepEqual(usage, whole.usage);
});

test('streaming without include_usage sends no usage chunk', async () => {
  const stream = await client().completions.create({
    model: 'm', prompt: 'x = ', max_tokens: 5, temperature: 0, stream: true,
  });
  for await (const chunk of stream) assert.equal(chunk.usage, undefined);
});

test('stop strings end the completion without their text', async () => {
  const request = { model: 'm', prompt: 'def f(a, b):\n    return', max_tokens: 40, temperature: 0 };
  const free = await client().completions.create(request);
  const text = free.choices[0].text;
  // Stop at the third character of the free-running text.
  const stop = text.slice(2, 4);
  assert.ok(stop.length === 2, `completion too short: ${JSON.stringify(text)}`);
  const stopped = await client().completions.create({ ...request, stop: [stop] });
  assert.equal(stopped.choices[0].text, text.slice(0, text.indexOf(stop)));
  assert.equal(stopped.choices[0].finish_reason, 'stop');
});

test('bad values are 400 BadRequestError naming the field', async () => {
  const cases = [
    [{ temperature: -1 }, 'temperature'],
    [{ top_p: 1.5 }, 'top_p'],
    [{ max_tokens: 0 }, 'max_tokens'],
    [{ max_tokens: 100000 }, 'max_tokens'],
    [{ prompt: 'def f(x): return x\n'.repeat(40) }, 'prompt'],
  ];
  for (const [fields, param] of cases) {
    await assert.rejects(
      client().completions.create({ model: 'm', prompt: 'x', ...fields }),
      (error) => {
        assert.ok(error instanceof OpenAI.BadRequestError, `${param}: ${error}`);
        assert.equal(error.status, 400);
        assert.equal(error.param, param);
        assert.equal(error.type, 'invalid_request_error');
        return true;
      });
  }
});

test('a wrong or missing API key is 401 AuthenticationError', async () => {
  const wrong = new OpenAI({ apiKey: 'sk-wrong', baseURL, maxRetries: 0 });
  await assert.rejects(wrong.models.list(), (error) => {
    assert.ok(error instanceof OpenAI.AuthenticationError, String(error));
    assert.equal(error.status, 401);
    return true;
  });
  const health = await fetch(baseURL.replace('/v1', '/health'));
  assert.equal(health.status, 200);
});

test('an unknown route is 404 NotFoundError', async () => {
  await assert.rejects(client().get('/no-such-route'), (error) => {
    assert.ok(error instanceof OpenAI.NotFoundError, String(error));
    return true;
  });
});

test('a chat completion has an assistant message, usage and the speculative object', async () => {
  const chat = await client().chat.completions.create({
    model: 'm',
    messages: [
      { role: 'system', content: 'You write Python.' },
      { role: 'user', content: [{ type: 'text', text: 'def main():' }] },
    ],
    max_completion_tokens: 16,
    temperature: 0,
  });
  assert.equal(chat.object, 'chat.completion');
  assert.match(chat.id, /^chatcmpl-/);
  assert.equal(chat.choices.length, 1);
  assert.equal(chat.choices[0].message.role, 'assistant');
  assert.equal(typeof chat.choices[0].message.content, 'string');
  assert.ok(['length', 'stop'].includes(chat.choices[0].finish_reason));
  assert.ok(chat.usage.prompt_tokens > 10);
  assert.ok(chat.usage.completion_tokens > 0 && chat.usage.completion_tokens <= 16);
  assert.equal(typeof chat.speculative.acceptance, 'number');
});

test('a streamed chat completion opens with the role and matches the greedy answer', async () => {
  const request = {
    model: 'm', messages: [{ role: 'user', content: 'import os' }], max_tokens: 12, temperature: 0,
  };
  const whole = await client().chat.completions.create(request);
  const stream = await client().chat.completions.create({
    ...request, stream: true, stream_options: { include_usage: true },
  });
  let text = '';
  let role = null;
  let finish = null;
  let usage = null;
  for await (const chunk of stream) {
    assert.equal(chunk.object, 'chat.completion.chunk');
    if (chunk.choices.length > 0) {
      const { delta } = chunk.choices[0];
      if (delta.role) {
        assert.equal(role, null, 'role sent twice');
        role = delta.role;
      }
      if (delta.content) text += delta.content;
      if (chunk.choices[0].finish_reason) finish = chunk.choices[0].finish_reason;
    }
    if (chunk.usage) usage = chunk.usage;
  }
  assert.equal(role, 'assistant');
  assert.equal(text, whole.choices[0].message.content);
  assert.equal(finish, whole.choices[0].finish_reason);
  assert.deepEqual(usage, whole.usage);
});

test('a chat with no messages is a 400 naming messages', async () => {
  await assert.rejects(
    client().chat.completions.create({ model: 'm', messages: [] }),
    (e) => e.status === 400 && e.param === 'messages',
  );
});
